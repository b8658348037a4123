// Reconnect delays: exponential backoff with full jitter (a uniform draw between 0 and an
// exponentially growing cap), so that clients dropped together do not come back together.

export interface BackoffOptions {
  /** The cap of the first retry. Default 500 ms. */
  baseMs?: number;
  /** The largest cap. Default 20 s. */
  maxMs?: number;
}

export class Backoff {
  private readonly baseMs: number;
  private readonly maxMs: number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 20_000;
  }

  /** The cap for the current attempt: min(max, base × 2^attempt). */
  cap(): number {
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
  }

  /** The delay before the next attempt, in ms; each call widens the next cap. */
  next(): number {
    const delay = Math.floor(this.random() * this.cap());
    this.attempt += 1;
    return delay;
  }

  /** Back to the first cap, after a connection that got its welcome. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
