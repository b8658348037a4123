// The SDK in headless Chromium against the real hub: connect, subscribe and publish, token
// refresh before expiry, and a revoked token that ends the client without a reconnect loop.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startHub, token } from "../support/hub.js";
import { launch, sdkPage, serveFiles, waitInPage } from "../support/browser.js";

let files, chromium;
before(async () => {
  files = await serveFiles();
  chromium = await launch();
});
after(async () => {
  await chromium?.close();
  await files?.close();
});

test("connect, subscribe and publish; direct, rpc errors with their codes", async () => {
  const hub = await startHub();
  try {
    const { page, errors } = await sdkPage(chromium.browser, files.origin);
    await page.exposeFunction("nodeToken", () => token({ sub: "alice" }));
    const result = await page.evaluate(async (url) => {
      const c = track(new RingHub.RingHubClient({ url, getToken: () => window.nodeToken(), clientKind: "web" }));
      c.connect();
      const chat = c.subscribe("chat:e2e");
      const log = c.subscribe("log:e2e");
      const got = [];
      chat.on("message", (m) => got.push(["chat", m.data, m.from]));
      log.on("message", (m) => got.push(["log", m.data, m.offset]));
      const directs = new Promise((r) => c.once("direct", r));
      const [chatSub, logSub] = await Promise.all([chat.ready, log.ready]);
      const acks = [await c.publish("chat:e2e", { n: 1 }), await log.publish({ n: 2 }), await log.publish({ n: 3 })];
      await c.send("alice", { hello: "me" });
      const direct = await directs;
      let rpcError;
      try {
        await c.rpc("no.backend", {}, { timeoutMs: 3000 });
      } catch (e) {
        rpcError = plain(e);
      }
      let forbidden;
      try {
        await c.publish("#alice", {});
      } catch (e) {
        forbidden = { code: e.code, isError: e instanceof RingHub.RingHubError };
      }
      while (got.length < 3) await new Promise((r) => setTimeout(r, 10));
      return { state: c.state, session: c.session, chatSub, logSub, acks, got, direct, rpcError, forbidden };
    }, hub.url);
    assert.equal(result.state, "connected");
    assert.equal(result.session.user, "alice");
    assert.equal(result.session.instance, hub.instance);
    assert.deepEqual(result.chatSub, { channel: "chat:e2e", cause: "subscribe" });
    assert.equal(result.logSub.offset, 0);
    assert.deepEqual(result.acks, [{}, { offset: 1 }, { offset: 2 }]);
    assert.deepEqual(result.got, [
      ["chat", { n: 1 }, "alice"],
      ["log", { n: 2 }, 1],
      ["log", { n: 3 }, 2],
    ]);
    assert.deepEqual(result.direct, { type: "direct", data: { hello: "me" }, from: "alice" });
    assert.equal(result.rpcError.code, "not_found");
    assert.deepEqual(result.forbidden, { code: "forbidden", isError: true }, "no client publishes on #… channels");
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await hub.stop();
  }
});

test("the token in the query: welcomed without an auth frame", async () => {
  const hub = await startHub();
  try {
    const { page, errors } = await sdkPage(chromium.browser, files.origin);
    await page.exposeFunction("nodeToken", () => token({ sub: "erin" }));
    const result = await page.evaluate(async (url) => {
      const c = track(new RingHub.RingHubClient({ url, getToken: () => window.nodeToken(), tokenIn: "query", clientKind: "web" }));
      c.connect();
      await new Promise((r) => c.once("connected", r));
      const ack = await c.publish("log:query", { q: 1 });
      c.close();
      return { ack, user: events("connected")[0].user, state: c.state };
    }, hub.url);
    assert.deepEqual(result, { ack: { offset: 1 }, user: "erin", state: "disconnected" });
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await hub.stop();
  }
});

test("the token is refreshed before it expires, on the same connection", async () => {
  // Tokens live 5 s and the hub asks for a refresh when 4 s are left: every second, with
  // 4 s for the refresh to arrive.
  const hub = await startHub({ env: { RINGHUB_REFRESH_WINDOW: "4s", RINGHUB_JWT_LEEWAY: "0s" } });
  try {
    const { page, errors } = await sdkPage(chromium.browser, files.origin);
    let issued = 0;
    await page.exposeFunction("nodeToken", () => (issued++, token({ sub: "bob", ttl: 5 })));
    await page.evaluate((url) => {
      window.c = track(new RingHub.RingHubClient({ url, getToken: () => window.nodeToken() }));
      window.c.connect();
    }, hub.url);
    // Three refreshes take the connection past its first token's expiry.
    await waitInPage(page, () => events("refreshed").length >= 3);
    const after = await page.evaluate(async () => {
      const ack = await window.c.publish("chat:refresh", { still: "here" });
      return { ack, connected: events("connected").length, connecting: events("connecting").length, state: window.c.state };
    });
    assert.deepEqual(after, { ack: {}, connected: 1, connecting: 1, state: "connected" });
    assert.ok(issued >= 4, `getToken was asked at connect and for each refresh (${issued})`);
    assert.deepEqual(await page.evaluate(() => events("error")), []);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await hub.stop();
  }
});

test("a revoked token ends the client: close 4004, no reconnect loop", async () => {
  const hub = await startHub();
  try {
    const { page, errors } = await sdkPage(chromium.browser, files.origin);
    let issued = 0;
    // The backend hands out the same token every time, as a cache would.
    const revoked = token({ sub: "carol", jti: "carol-1" });
    await page.exposeFunction("nodeToken", () => (issued++, revoked));
    await page.evaluate((url) => {
      window.c = track(new RingHub.RingHubClient({ url, getToken: () => window.nodeToken(), backoff: { baseMs: 10, maxMs: 50 } }));
      window.c.connect();
    }, hub.url);
    await waitInPage(page, () => events("connected").length === 1);
    const answer = await hub.api("POST", "/api/revoke", { jti: "carol-1" });
    assert.equal(answer.closed, 1);
    await waitInPage(page, () => events("disconnected").length === 1);
    const end = await page.evaluate(() => ({ state: window.c.state, disconnected: events("disconnected")[0], connecting: events("connecting").length }));
    assert.equal(end.state, "disconnected");
    assert.equal(end.disconnected.code, 4004);
    assert.equal(end.disconnected.error.code, "closed");
    assert.equal(end.connecting, 1, "no attempt after the first");
    // Another client's connection, made after the revoked one's end: the hub counted
    // exactly two, so the revoked client did not come back in between.
    await page.exposeFunction("otherToken", () => token({ sub: "dave" }));
    await page.evaluate(async (url) => {
      const other = new RingHub.RingHubClient({ url, getToken: () => window.otherToken() });
      other.connect();
      await new Promise((r) => other.once("connected", r));
      other.close();
    }, hub.url);
    assert.equal(await hub.metric("ringhub_connects_total"), 2);
    assert.equal(issued, 1);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await hub.stop();
  }
});
