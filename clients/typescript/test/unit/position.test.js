// Position: what a subscription delivers, by offset, and the `since` it resubscribes with.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Position } from "../../dist/index.js";

test("a replay overlapping what was delivered is delivered once, in order", () => {
  const p = new Position();
  p.subscribed({ type: "subscribed", channel: "log:1", offset: 3, epoch: "e1" });
  const seen = [];
  for (const offset of [4, 5, 4, 5, 6, 3, 7]) if (p.accept(offset)) seen.push(offset);
  assert.deepEqual(seen, [4, 5, 6, 7]);
  assert.equal(p.duplicates, 3);
  assert.deepEqual(p.since(), { offset: 7, epoch: "e1" });
});

test("recovered: true keeps the position, the missed publications follow", () => {
  const p = new Position({ offset: 10, epoch: "e1" });
  p.subscribed({ type: "subscribed", channel: "log:1", offset: 14, epoch: "e1", recovered: true });
  assert.deepEqual(p.since(), { offset: 10, epoch: "e1" });
  assert.ok(p.accept(11));
});

test("recovered: false carries on from the channel's offset and epoch", () => {
  const p = new Position({ offset: 10, epoch: "e1" });
  p.subscribed({ type: "subscribed", channel: "log:1", offset: 2, epoch: "e2", recovered: false });
  assert.deepEqual(p.since(), { offset: 2, epoch: "e2" });
  assert.equal(p.accept(2), false);
  assert.ok(p.accept(3));
});

test("a channel without history has no since, and every message is delivered", () => {
  const p = new Position();
  p.subscribed({ type: "subscribed", channel: "chat:1" });
  assert.equal(p.since(), undefined);
  assert.ok(p.accept(undefined));
  assert.ok(p.accept(undefined));
});

test("a subscribe answered without Redis (offset 0, empty epoch) still asks with since", () => {
  const p = new Position();
  p.subscribed({ type: "subscribed", channel: "log:1", offset: 0, epoch: "" });
  assert.deepEqual(p.since(), { offset: 0, epoch: "" });
});
