// The client's state machine, against a tiny in-memory WebSocket (no hub involved): what
// it sends, and what it does on each frame and close code. The real hub is in test/e2e.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RingHubClient, RingHubError } from "../../dist/index.js";

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.binaryType = "blob";
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  // The hub's side.
  accept() {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  welcome(extra = {}) {
    this.frame({ type: "welcome", conn: "1", user: "u", instance: "i1", shard: 0, ping_interval_ms: 0, expires_at: 2e9, ...extra });
  }
}

/** Lets the client's awaits (getToken) run. */
async function until(cond) {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), "condition reached");
}

function client(options = {}) {
  FakeSocket.all = [];
  const events = [];
  const c = new RingHubClient({
    url: ["ws://a/ws", "ws://b/ws"],
    getToken: () => "t1",
    WebSocket: FakeSocket,
    backoff: { baseMs: 1, maxMs: 2 },
    ...options,
  });
  for (const name of ["connecting", "connected", "disconnected", "error", "reconnect"]) {
    c.on(name, (e) => events.push([name, e]));
  }
  return { c, events };
}

async function connected(c, n = 1) {
  await until(() => FakeSocket.all.length === n);
  const s = FakeSocket.all[n - 1];
  s.accept();
  s.welcome();
  return s;
}

test("the token is the first frame, then welcome makes the client connected", async () => {
  const { c, events } = client();
  c.connect();
  assert.equal(c.state, "connecting");
  const s = await connected(c);
  assert.deepEqual(s.sent[0], { type: "auth", token: "t1" });
  assert.equal(c.state, "connected");
  assert.equal(c.session.instance, "i1");
  assert.deepEqual(events.map((e) => e[0]), ["connecting", "connected"]);
  c.close();
  assert.equal(c.state, "disconnected");
});

test("in the query, the token and client kind are in the URL and no auth frame is sent", async () => {
  const { c } = client({ tokenIn: "query", clientKind: "web" });
  c.connect();
  const s = await connected(c);
  assert.equal(s.url, "ws://a/ws?client=web&token=t1");
  assert.equal(s.sent.length, 0);
  c.close();
});

test("requests made before the welcome wait for it; those in flight fail when it drops", async () => {
  const { c } = client();
  c.connect();
  const early = c.publish("chat:1", { n: 1 });
  const s = await connected(c);
  assert.deepEqual(s.sent[1], { type: "publish", channel: "chat:1", data: { n: 1 }, id: 1 });
  s.frame({ type: "ack", id: 1, offset: 7 });
  assert.deepEqual(await early, { offset: 7 });
  const lost = c.rpc("game.move", { x: 1 });
  s.drop(1006);
  await assert.rejects(lost, (e) => e instanceof RingHubError && e.code === "disconnected");
  c.close();
});

test("an error frame rejects its request with the protocol's code and retry_after_ms", async () => {
  const { c } = client();
  c.connect();
  const s = await connected(c);
  const p = c.publish("chat:1", 1);
  s.frame({ type: "error", id: 1, code: "rate_limited", message: "slow down", retry_after_ms: 250 });
  await assert.rejects(p, (e) => e.code === "rate_limited" && e.retryAfterMs === 250);
  c.close();
});

test("4004 (revoked or disconnected) stops: no new socket, state disconnected", async () => {
  const { c, events } = client();
  c.connect();
  const s = await connected(c);
  s.drop(4004, "token revoked");
  assert.equal(c.state, "disconnected");
  const last = events.at(-1);
  assert.equal(last[0], "disconnected");
  assert.equal(last[1].code, 4004);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(FakeSocket.all.length, 1);
});

test("4001 asks getToken again; a second 4001 in a row stops", async () => {
  let calls = 0;
  const { c } = client({ getToken: () => `t${++calls}` });
  c.connect();
  const s1 = await connected(c);
  s1.drop(4001, "token expired");
  await until(() => FakeSocket.all.length === 2);
  const s2 = FakeSocket.all[1];
  s2.accept();
  assert.deepEqual(s2.sent[0], { type: "auth", token: "t2" });
  s2.drop(4001, "invalid or expired token");
  assert.equal(c.state, "disconnected");
  assert.equal(calls, 2);
});

test("no token from getToken stops the client", async () => {
  const { c, events } = client({ getToken: () => null });
  c.connect();
  await until(() => c.state === "disconnected");
  assert.equal(FakeSocket.all.length, 0);
  assert.equal(events.at(-1)[1].error.code, "unauthorized");
});

test("a drain's reconnect.after_ms is the delay, and the next URL is tried", async () => {
  const { c, events } = client();
  c.connect();
  const s = await connected(c);
  s.frame({ type: "reconnect", after_ms: 1234 });
  s.drop(1001, "draining");
  const connecting = events.filter((e) => e[0] === "connecting").at(-1)[1];
  assert.equal(connecting.delayMs, 1234);
  assert.equal(connecting.code, 1001);
  assert.deepEqual(events.find((e) => e[0] === "reconnect")[1], { afterMs: 1234 });
  c.close();
});

test("subscriptions are renewed with since, and duplicates dropped by offset", async () => {
  const { c } = client();
  const sub = c.subscribe("log:1");
  const got = [];
  const subscribed = [];
  sub.on("message", (m) => got.push(m.offset));
  sub.on("subscribed", (e) => subscribed.push(e));
  c.connect();
  const s1 = await connected(c);
  assert.deepEqual(s1.sent[1], { type: "subscribe", channel: "log:1", id: 1 });
  s1.frame({ type: "subscribed", id: 1, channel: "log:1", offset: 4, epoch: "e" });
  s1.frame({ type: "message", channel: "log:1", data: 5, offset: 5 });
  s1.drop(1006);
  const s2 = await connected(c, 2);
  assert.deepEqual(s2.sent[1], { type: "subscribe", channel: "log:1", since: { offset: 5, epoch: "e" }, id: 2 });
  s2.frame({ type: "subscribed", id: 2, channel: "log:1", offset: 7, epoch: "e", recovered: true });
  for (const offset of [5, 6, 7, 7, 8]) s2.frame({ type: "message", channel: "log:1", data: offset, offset });
  assert.deepEqual(got, [5, 6, 7, 8]);
  assert.deepEqual(subscribed.map((e) => [e.cause, e.recovered]), [["subscribe", undefined], ["reconnect", true]]);
  c.close();
});

test("an unsolicited unsubscribed with recovery_failed resubscribes at once with since", async () => {
  const { c } = client();
  const sub = c.subscribe("log:1");
  const subscribed = [];
  sub.on("subscribed", (e) => subscribed.push(e));
  c.connect();
  const s = await connected(c);
  s.frame({ type: "subscribed", id: 1, channel: "log:1", offset: 9, epoch: "e" });
  s.frame({ type: "unsubscribed", channel: "log:1", reason: "recovery_failed" });
  assert.deepEqual(s.sent.at(-1), { type: "subscribe", channel: "log:1", since: { offset: 9, epoch: "e" }, id: 2 });
  s.frame({ type: "subscribed", id: 2, channel: "log:1", offset: 12, epoch: "e", recovered: false });
  assert.equal(sub.state, "subscribed");
  assert.deepEqual(subscribed.at(-1), { channel: "log:1", offset: 12, epoch: "e", recovered: false, cause: "recovery_failed" });
  c.close();
});

test("a refused subscribe ends the subscription with the error", async () => {
  const { c } = client();
  c.connect();
  const s = await connected(c);
  const sub = c.subscribe("secret:1");
  const errors = [];
  sub.on("error", (e) => errors.push(e.code));
  s.frame({ type: "error", id: 1, code: "forbidden", message: "not permitted on this channel" });
  await assert.rejects(sub.ready, (e) => e.code === "forbidden");
  assert.deepEqual(errors, ["forbidden"]);
  assert.equal(c.subscription("secret:1"), undefined);
  c.close();
});

test("expiring asks getToken and sends refresh; refreshed moves the expiry", async () => {
  let calls = 0;
  const { c } = client({ getToken: () => `t${++calls}` });
  c.connect();
  const s = await connected(c);
  const refreshed = new Promise((r) => c.once("refreshed", r));
  s.frame({ type: "expiring", expires_at: 2e9 });
  await until(() => s.sent.some((f) => f.type === "refresh"));
  const refresh = s.sent.find((f) => f.type === "refresh");
  assert.equal(refresh.token, "t2");
  s.frame({ type: "refreshed", id: refresh.id, expires_at: 2e9 + 60 });
  assert.deepEqual(await refreshed, { expiresAt: 2e9 + 60 });
  assert.equal(c.session.expiresAt, 2e9 + 60);
  c.close();
});

test("join, leave and status reach the subscription and the client", async () => {
  const { c } = client();
  const sub = c.subscribe("room:1");
  const seen = [];
  sub.on("join", (e) => seen.push(["join", e.user]));
  sub.on("status", (e) => seen.push(["status", e.status]));
  c.on("leave", (e) => seen.push(["leave", e.user]));
  c.connect();
  const s = await connected(c);
  s.frame({ type: "join", channel: "room:1", user: "bob", info: {} });
  s.frame({ type: "status", channel: "room:1", user: "bob", status: "away" });
  s.frame({ type: "leave", channel: "room:1", user: "bob", info: {} });
  assert.deepEqual(seen, [["join", "bob"], ["status", "away"], ["leave", "bob"]]);
  c.close();
});

test("an http(s) URL stands for ws(s)", async () => {
  const { c } = client({ url: "https://hub.example/ws", tokenIn: "query" });
  c.connect();
  await until(() => FakeSocket.all.length === 1);
  assert.equal(FakeSocket.all[0].url, "wss://hub.example/ws?token=t1");
  c.close();
});

test("a backend's subscription is not renewed after a reconnect, unless the application asks for it", async () => {
  const { c } = client();
  const seen = [];
  c.on("subscribed", (sub) => seen.push(sub.channel));
  c.connect();
  const s1 = await connected(c);
  s1.frame({ type: "subscribed", channel: "news:1" });
  s1.frame({ type: "subscribed", channel: "news:2" });
  assert.deepEqual(seen, ["news:1", "news:2"]);
  const ended = [];
  c.subscription("news:1").on("unsubscribed", (e) => ended.push(e.reason));
  assert.equal(c.subscribe("news:2").serverSide, false);
  s1.drop(1006);
  assert.deepEqual(ended, ["disconnected"]);
  const s2 = await connected(c, 2);
  assert.deepEqual(s2.sent.slice(1).map((f) => f.channel), ["news:2"]);
  c.close();
});
