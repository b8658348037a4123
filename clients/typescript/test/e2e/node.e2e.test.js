// The SDK in Node against the real hub, on the `ws` package's WebSocket (Node 20 has a
// global WebSocket only behind --experimental-websocket).
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { RingHubClient, RingHubError } from "../../dist/index.js";
import { startHub, token } from "../support/hub.js";

test("without a WebSocket to use, the constructor says what to pass", { skip: globalThis.WebSocket !== undefined }, () => {
  assert.throws(() => new RingHubClient({ url: "ws://127.0.0.1:1/ws", token: "t" }), /WebSocket.*ws/);
});

test("in Node with ws: connect, presence, publish with history, the ack's offset", async () => {
  const hub = await startHub();
  const c = new RingHubClient({ url: hub.url, getToken: () => token({ sub: "node-bot" }), WebSocket, clientKind: "bot" });
  try {
    c.connect();
    const lobby = c.subscribe("lobby:node");
    const joined = new Promise((r) => lobby.once("join", r));
    const first = await lobby.ready;
    assert.equal(first.offset, 0);
    assert.equal((await joined).user, "node-bot");
    const users = await lobby.presence();
    assert.deepEqual(users.map((u) => [u.user, u.conns, u.status]), [["node-bot", 1, "online"]]);
    const message = new Promise((r) => lobby.once("message", r));
    assert.deepEqual(await lobby.publish({ text: "hi" }), { offset: 1 });
    const m = await message;
    assert.deepEqual([m.offset, m.from, m.data], [1, "node-bot", { text: "hi" }]);
    const history = await lobby.history({ limit: 10 });
    assert.deepEqual(history.publications.map((p) => p.data), [{ text: "hi" }]);
    await c.setStatus("away");
  } finally {
    c.close();
    await hub.stop();
  }
});

test("rpc: the backend's answer, its error codes, and the SDK's own timeout", async () => {
  // An HTTP backend for the hub's rpc calls (§9): echoes, refuses, or never answers.
  const waiting = [];
  const backend = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const call = JSON.parse(body);
      if (call.method === "game.echo") return res.end(JSON.stringify({ data: { echo: call.data, user: call.user } }));
      if (call.method === "game.busy") {
        return res.end(JSON.stringify({ error: { code: "rate_limited", message: "busy", retry_after_ms: 700 } }));
      }
      waiting.push(res);
    });
  });
  await new Promise((r) => backend.listen(0, "127.0.0.1", r));
  const hub = await startHub({ env: { RINGHUB_RPC_URL: `http://127.0.0.1:${backend.address().port}/rpc` } });
  const c = new RingHubClient({ url: hub.url, token: token({ sub: "player-1" }), WebSocket });
  try {
    c.connect();
    assert.deepEqual(await c.rpc("game.echo", { x: 1 }), { echo: { x: 1 }, user: "player-1" });
    await assert.rejects(c.rpc("game.busy", {}), (e) => e instanceof RingHubError && e.code === "rate_limited" && e.retryAfterMs === 700);
    await assert.rejects(c.rpc("game.slow", {}, { timeoutMs: 300 }), (e) => e.code === "timeout");
  } finally {
    c.close();
    for (const res of waiting) res.destroy();
    await hub.stop();
    await new Promise((r) => backend.close(r));
  }
});

test("in Node with the global WebSocket (Node 22+, or 20 with --experimental-websocket)", async () => {
  const hub = await startHub();
  try {
    const flags = globalThis.WebSocket === undefined ? ["--experimental-websocket", "--no-warnings"] : [];
    const script = fileURLToPath(new URL("../support/global-websocket.mjs", import.meta.url));
    const out = await new Promise((resolve, reject) =>
      execFile(process.execPath, [...flags, script, hub.url, token({ sub: "global" })], (e, stdout, stderr) =>
        e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    assert.deepEqual(JSON.parse(out), { ack: { offset: 1 }, data: { via: "global WebSocket" } });
  } finally {
    await hub.stop();
  }
});
