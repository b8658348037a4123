// The SDK in headless Chromium against two real hubs on a real Redis (history survives a
// hub's restart there): a hub killed and restarted mid-stream, and a drain that sends the
// client to the other instance. A publisher on the other hub numbers its publications;
// the page must get every number once, in order.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startHub, startRedis, token } from "../support/hub.js";
import { launch, sdkPage, serveFiles, waitInPage } from "../support/browser.js";

let files, chromium, redis;
before(async () => {
  redis = await startRedis();
  if (!redis) return;
  files = await serveFiles();
  chromium = await launch();
});
after(async () => {
  await chromium?.close();
  await files?.close();
  await redis?.stop();
});

/** Publishes 1, 2, 3, … on `channel` through `hub`'s server API until stopped. */
function publisher(hub, channel) {
  let seq = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      seq += 1;
      await hub.api("POST", "/api/publish", { channel, data: { seq } });
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    get seq() {
      return seq;
    },
    /** Publishes until `more` past the current number, then stops; the last number. */
    async stopAfter(more) {
      const until = seq + more;
      while (seq < until) await new Promise((r) => setTimeout(r, 5));
      running = false;
      await done;
      return seq;
    },
  };
}

/** A page whose client subscribes to `channel` and records every seq and offset. */
async function subscriber(urls, channel) {
  const { page, errors } = await sdkPage(chromium.browser, files.origin);
  await page.exposeFunction("nodeToken", () => token({ sub: "watcher" }));
  await page.evaluate(
    (urls, channel) => {
      window.seqs = [];
      window.offsets = [];
      window.subscribed = [];
      const c = track(
        new RingHub.RingHubClient({ url: urls, getToken: () => window.nodeToken(), backoff: { baseMs: 50, maxMs: 400 } }),
      );
      const sub = c.subscribe(channel);
      sub.on("message", (m) => (window.seqs.push(m.data.seq), window.offsets.push(m.offset)));
      sub.on("subscribed", (e) => window.subscribed.push(e));
      c.connect();
      window.c = c;
    },
    urls,
    channel,
  );
  await waitInPage(page, () => window.subscribed.length === 1);
  return { page, errors };
}

function assertEveryNumberOnce(seqs, offsets, last) {
  const expected = Array.from({ length: last }, (_, i) => i + 1);
  const missing = expected.filter((n) => !seqs.includes(n));
  const dups = seqs.filter((n, i) => seqs.indexOf(n) !== i);
  assert.deepEqual({ missing, dups }, { missing: [], dups: [] });
  assert.deepEqual(seqs, expected, "in order");
  assert.deepEqual(offsets, expected, "offsets 1.. without a gap");
}

test("a hub restarted mid-stream: the client reconnects and recovers every publication once", async (t) => {
  if (!redis) return t.skip("redis-server is not installed (set RINGHUB_REQUIRE_REDIS=1 to make this a failure)");
  const env = { RINGHUB_REDIS_URL: redis.url };
  const other = await startHub({ env: { ...env, RINGHUB_INSTANCE_ID: "restart-b" } });
  let hub = await startHub({ env: { ...env, RINGHUB_INSTANCE_ID: "restart-a" } });
  try {
    const { page, errors } = await subscriber([hub.url], "log:restart");
    const pub = publisher(other, "log:restart");
    await waitInPage(page, () => window.seqs.length >= 20);
    await hub.stop("SIGKILL");
    // Published while the client's hub is gone: only the history has these.
    const duringOutage = pub.seq + 30;
    while (pub.seq < duringOutage) await new Promise((r) => setTimeout(r, 5));
    hub = await startHub({ env: { ...env, RINGHUB_INSTANCE_ID: "restart-a" }, listen: hub.addr });
    await waitInPage(page, () => window.subscribed.length === 2);
    const last = await pub.stopAfter(30);
    await waitInPage(page, (n) => window.seqs.length >= n, last);
    const seen = await page.evaluate(() => ({ seqs: window.seqs, offsets: window.offsets, subscribed: window.subscribed }));
    assertEveryNumberOnce(seen.seqs, seen.offsets, last);
    assert.equal(seen.subscribed[1].cause, "reconnect");
    assert.equal(seen.subscribed[1].recovered, true);
    const states = await page.evaluate(() => events("state").map((e) => e.state));
    assert.deepEqual(states, ["connecting", "connected", "connecting", "connected"]);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await hub.stop();
    await other.stop();
  }
});

test("a drain: the client follows reconnect.after_ms to the other instance and recovers", async (t) => {
  if (!redis) return t.skip("redis-server is not installed (set RINGHUB_REQUIRE_REDIS=1 to make this a failure)");
  const env = { RINGHUB_REDIS_URL: redis.url };
  const a = await startHub({ env: { ...env, RINGHUB_INSTANCE_ID: "drain-a" } });
  const b = await startHub({ env: { ...env, RINGHUB_INSTANCE_ID: "drain-b" } });
  try {
    const { page, errors } = await subscriber([a.url, b.url], "log:drain");
    assert.equal(await page.evaluate(() => window.c.session.instance), "drain-a");
    const pub = publisher(b, "log:drain");
    await waitInPage(page, () => window.seqs.length >= 20);
    const drained = a.stop("SIGTERM");
    await waitInPage(page, () => window.subscribed.length === 2);
    const last = await pub.stopAfter(30);
    await waitInPage(page, (n) => window.seqs.length >= n, last);
    assert.equal((await drained).code, 0, "the drained hub exits 0");
    const seen = await page.evaluate(() => ({
      seqs: window.seqs,
      offsets: window.offsets,
      subscribed: window.subscribed,
      instance: window.c.session.instance,
      reconnect: events("reconnect"),
      connecting: events("connecting"),
    }));
    assert.equal(seen.instance, "drain-b");
    assert.equal(seen.reconnect.length, 1);
    const afterMs = seen.reconnect[0].afterMs;
    assert.ok(afterMs >= 0 && afterMs <= 200, `after_ms within reconnect_jitter: ${afterMs}`);
    const retry = seen.connecting[1];
    assert.equal(retry.code, 1001);
    assert.equal(retry.delayMs, afterMs, "the delay is the hub's after_ms");
    assert.equal(seen.subscribed[1].recovered, true);
    assertEveryNumberOnce(seen.seqs, seen.offsets, last);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await a.stop();
    await b.stop();
  }
});

test("the hub ends a subscription on a gap it cannot close: the client resubscribes and reports recovered: false", async (t) => {
  if (!redis) return t.skip("redis-server is not installed (set RINGHUB_REQUIRE_REDIS=1 to make this a failure)");
  // The client's hub logs in to Redis as `b`, whom the test locks out for a while.
  redis.cli("ACL", "SETUSER", "b", "on", ">pw", "~*", "&*", "+@all");
  const publisherHub = await startHub({ env: { RINGHUB_REDIS_URL: redis.url, RINGHUB_INSTANCE_ID: "gap-a" } });
  const hub = await startHub({ env: { RINGHUB_REDIS_URL: `${redis.url}?user=b&pass=pw`, RINGHUB_INSTANCE_ID: "gap-b" } });
  try {
    const { page, errors } = await subscriber([hub.url], "log:gap");
    const publish = (seq) => publisherHub.api("POST", "/api/publish", { channel: "log:gap", data: { seq } });
    for (let seq = 1; seq <= 3; seq++) await publish(seq);
    await waitInPage(page, () => window.seqs.length === 3);
    redis.cli("ACL", "SETUSER", "b", "off");
    redis.cli("CLIENT", "KILL", "USER", "b");
    while ((await hub.metric("ringhub_relay_up")) !== 0) await new Promise((r) => setTimeout(r, 20));
    // The history is lost (a Redis restarted without its data): a new epoch starts while
    // the client's hub hears nothing.
    redis.cli("DEL", "ringhub:history.log:gap", "ringhub:history-meta.log:gap");
    for (let seq = 4; seq <= 5; seq++) await publish(seq);
    redis.cli("ACL", "SETUSER", "b", "on");
    await waitInPage(page, () => window.subscribed.length === 2);
    const again = await page.evaluate(() => window.subscribed[1]);
    assert.equal(again.cause, "recovery_failed");
    assert.equal(again.recovered, false);
    assert.equal(again.offset, 2, "where the new epoch stands");
    assert.notEqual(again.epoch, (await page.evaluate(() => window.subscribed[0])).epoch);
    // The subscription carries on in the new epoch.
    while ((await hub.metric("ringhub_relay_up")) !== 1) await new Promise((r) => setTimeout(r, 20));
    await publish(6);
    await waitInPage(page, () => window.seqs.includes(6));
    const seen = await page.evaluate(() => ({ seqs: window.seqs, offsets: window.offsets, state: window.c.state }));
    assert.deepEqual(seen, { seqs: [1, 2, 3, 6], offsets: [1, 2, 3, 3], state: "connected" });
    assert.equal(await page.evaluate(() => events("connecting").length), 1, "the same connection throughout");
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await hub.stop();
    await publisherHub.stop();
  }
});
