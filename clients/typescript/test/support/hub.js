// The real parts of the end-to-end tests: the ringhub binary (configured as the Rust tests
// do: free ports, a known secret, a config file for namespaces), a real redis-server on a
// Unix socket (as tests/common/redis.rs starts it), and tokens signed with the secret.

import { execFileSync, spawn } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO = resolve(fileURLToPath(new URL("../../../..", import.meta.url)));
export const SECRET = "sdk-e2e-secret";
export const API_KEY = "sdk-e2e-api-key";

/** The hub binary: RINGHUB_BIN, else the debug build in CARGO_TARGET_DIR or target/. */
export function hubBinary() {
  const bin =
    process.env.RINGHUB_BIN ??
    join(resolve(REPO, process.env.CARGO_TARGET_DIR ?? "target"), "debug", "ringhub");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run cargo build --bin ringhub first`);
  return bin;
}

/** A JWT signed HS256 with SECRET, as `ringhub token` would make. */
export function token({ sub, ttl = 3600, channels = ["*"], publish = ["*"], jti, info }) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub, iat: now, exp: now + ttl, channels, publish };
  if (jti) claims.jti = jti;
  if (info) claims.info = info;
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  const sig = createHmac("sha256", SECRET).update(body).digest("base64url");
  return `${body}.${sig}`;
}

/** The namespaces the tests use; `lobby` is the example page's. */
export const NAMESPACES = `
[namespaces.chat]
public = true
client_publish = true

[namespaces.log]
public = true
client_publish = true
history_size = 10000
history_ttl = "1h"

[namespaces.lobby]
public = true
client_publish = true
history_size = 200
history_ttl = "1h"
presence = true
join_leave = true
`;

const live = new Set();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * Starts the hub; resolves once it logs `ringhub ready`. `env` adds RINGHUB_* settings;
 * `listen` fixes the public address (a restart reuses it).
 */
export async function startHub({ env = {}, listen = "127.0.0.1:0", toml = NAMESPACES } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ringhub-sdk-"));
  const config = join(dir, "ringhub.toml");
  writeFileSync(config, toml);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("RINGHUB_")));
  const child = spawn(hubBinary(), [], {
    env: {
      ...clean,
      RINGHUB_CONFIG: config,
      RINGHUB_LISTEN: listen,
      RINGHUB_ADMIN_LISTEN: "127.0.0.1:0",
      RINGHUB_SHARDS: "2",
      RINGHUB_JWT_SECRET: SECRET,
      RINGHUB_API_KEYS: createHash("sha256").update(API_KEY).digest("hex"),
      RINGHUB_RECONNECT_JITTER: "200ms",
      RINGHUB_DRAIN_TIMEOUT: "3s",
      RINGHUB_CLOSE_TIMEOUT: "500ms",
      RINGHUB_LOG: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  const log = [];
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  exited.then(() => {
    live.delete(child);
    rmSync(dir, { recursive: true, force: true });
  });
  const ready = new Promise((resolveReady, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      log.push(line);
      const m = line.match(/ringhub ready addr=(\S+) admin=(\S+).* instance=(\S+)/);
      if (m) resolveReady({ addr: m[1], admin: m[2], instance: m[3] });
    });
    child.stderr.on("data", (d) => log.push(d.toString()));
    exited.then(({ code }) => reject(new Error(`the hub exited (${code}) before it was ready:\n${log.join("\n")}`)));
    setTimeout(() => reject(new Error(`the hub was not ready in 60 s:\n${log.join("\n")}`)), 60_000).unref();
  });
  const { addr, admin, instance } = await ready;
  return {
    addr,
    admin,
    instance,
    url: `ws://${addr}/ws`,
    log,
    /** A server API call (§6), with the test's API key. */
    async api(method, path, body) {
      const res = await fetch(`http://${admin}${path}`, {
        method,
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    async metric(name) {
      const res = await fetch(`http://${admin}/metrics`);
      const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.split(" ")[1]);
    },
    /** Sends the signal and waits for the process to exit. */
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * A redis-server on a Unix socket in a directory of its own (--port 0: no TCP), or null
 * when it is not installed and RINGHUB_REQUIRE_REDIS is not 1 (the test then skips).
 */
export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), "ringhub-sdk-redis-"));
  const socket = join(dir, "redis.sock");
  const child = spawn(
    "redis-server",
    ["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket", socket, "--unixsocketperm", "700", "--dir", dir],
    { stdio: "ignore" },
  );
  const missing = await new Promise((r) => {
    child.once("error", (e) => r(e.code === "ENOENT"));
    child.once("spawn", () => r(false));
  });
  if (missing) {
    rmSync(dir, { recursive: true, force: true });
    if (process.env.RINGHUB_REQUIRE_REDIS === "1") {
      throw new Error("redis-server is not installed, and RINGHUB_REQUIRE_REDIS=1: apt-get install redis-server");
    }
    return null;
  }
  live.add(child);
  const exited = new Promise((r) => child.once("exit", r));
  for (let i = 0; ; i++) {
    const up = await new Promise((r) => {
      const s = connect(socket, () => (s.end(), r(true)));
      s.once("error", () => r(false));
    });
    if (up) break;
    if (i > 500) throw new Error("redis-server did not start");
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    url: `redis+unix://${socket}`,
    /** A command through redis-cli; its answer as text. */
    cli: (...args) => execFileSync("redis-cli", ["-s", socket, ...args], { encoding: "utf8" }).trim(),
    async stop() {
      child.kill("SIGKILL");
      await exited;
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
