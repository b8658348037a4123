// afterClose: the close codes of docs/protocol.md §5 and what the client does on each.
import { test } from "node:test";
import assert from "node:assert/strict";
import { afterClose } from "../../dist/reconnect.js";

const base = { reason: "", opened: true, tokenIn: "frame", canRenew: true, authFailures: 0 };

test("4003 and 4004 stop for good", () => {
  for (const code of [4003, 4004]) {
    const d = afterClose({ ...base, code });
    assert.ok("stop" in d, `${code} stops`);
    assert.equal(d.stop.code, "closed");
  }
});

test("4001 retries once, with a new token, and only with getToken", () => {
  assert.deepEqual(afterClose({ ...base, code: 4001, authFailures: 1 }), { retry: true, newToken: true });
  const twice = afterClose({ ...base, code: 4001, authFailures: 2 });
  assert.equal(twice.stop.code, "unauthorized");
  const fixed = afterClose({ ...base, code: 4001, authFailures: 1, canRenew: false });
  assert.equal(fixed.stop.code, "unauthorized");
});

test("drains, drops, ping timeouts and slow consumers retry with the token in hand", () => {
  for (const code of [1001, 1006, 1011, 4009, 4029, 1008]) {
    assert.deepEqual(afterClose({ ...base, code }), { retry: true, newToken: false }, `${code}`);
  }
});

test("a query token whose upgrade failed may have been refused: the retry asks getToken", () => {
  const d = afterClose({ ...base, code: 1006, opened: false, tokenIn: "query" });
  assert.deepEqual(d, { retry: true, newToken: true });
});
