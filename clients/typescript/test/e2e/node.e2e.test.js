// The SDK in Node against the real hub, on the `ws` package's WebSocket (Node 20 has a
// global WebSocket only behind --experimental-websocket).
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { RingHubClient } from "../../dist/index.js";
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
