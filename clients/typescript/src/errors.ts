// Errors the SDK hands to the application: the hub's own error frames (§2 "Errors"), with
// their codes, and the few conditions only the client can see.

import type { ErrorFrame, ProtocolErrorCode } from "./protocol.js";

/**
 * The codes a RingHubError carries: the protocol's (§2), plus the client's own:
 * - `disconnected`: the connection went away before the reply came; the request may or
 *   may not have been carried out;
 * - `closed`: the client was closed (by `close()`, or it stopped for good).
 * `timeout` is also used when the SDK's own deadline for a reply passes.
 */
export type ErrorCode = ProtocolErrorCode | "disconnected" | "closed";

export class RingHubError extends Error {
  readonly code: ErrorCode;
  /** With `rate_limited`: how long to wait before trying again. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, retryAfterMs?: number) {
    super(message);
    this.name = "RingHubError";
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  static fromFrame(frame: ErrorFrame): RingHubError {
    return new RingHubError(frame.code, frame.message, frame.retry_after_ms);
  }
}
