// Backoff: full jitter under a cap that doubles up to the maximum, and resets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Backoff } from "../../dist/index.js";

test("caps double from the base up to the maximum", () => {
  const b = new Backoff({ baseMs: 100, maxMs: 1000 }, () => 0.999999);
  const delays = Array.from({ length: 6 }, () => b.next());
  assert.deepEqual(delays, [99, 199, 399, 799, 999, 999]);
});

test("full jitter: a draw of 0 waits nothing, every delay is below its cap", () => {
  const zero = new Backoff({ baseMs: 100, maxMs: 1000 }, () => 0);
  assert.equal(zero.next(), 0);
  const b = new Backoff({ baseMs: 100, maxMs: 1000 });
  for (let i = 0; i < 50; i++) {
    const cap = b.cap();
    const d = b.next();
    assert.ok(d >= 0 && d < cap, `${d} within [0, ${cap})`);
  }
});

test("reset starts again from the base", () => {
  const b = new Backoff({ baseMs: 100, maxMs: 1000 }, () => 0.5);
  b.next();
  b.next();
  b.next();
  assert.equal(b.cap(), 800);
  b.reset();
  assert.equal(b.cap(), 100);
  assert.equal(b.attempts, 0);
});
