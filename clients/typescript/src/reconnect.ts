// What the client does when a connection ends, by close code (§5): retry after a delay,
// retry only with a new token, or stop for good.

import { RingHubError } from "./errors.js";
import { CloseCode } from "./protocol.js";

export interface Ending {
  code: number;
  reason: string;
  /** Whether the WebSocket had opened (a refused upgrade never does). */
  opened: boolean;
  tokenIn: "frame" | "query";
  /** Whether getToken exists. */
  canRenew: boolean;
  /** 4001 closes in a row, this one included, with no welcome in between. */
  authFailures: number;
}

export type Decision =
  | { stop: RingHubError }
  | { retry: true; /** The next connection needs a token from getToken. */ newToken: boolean };

export function afterClose(e: Ending): Decision {
  if (e.code === CloseCode.TooManyConnections || e.code === CloseCode.Disconnected) {
    return { stop: new RingHubError("closed", `closed by the hub: ${e.code} ${e.reason}`) };
  }
  if (e.code === CloseCode.Unauthorized) {
    // Never the same token again; a second refusal in a row means getToken cannot help.
    if (!e.canRenew || e.authFailures >= 2) {
      return { stop: new RingHubError("unauthorized", `the hub refused the token: ${e.reason}`) };
    }
    return { retry: true, newToken: true };
  }
  // A refused query token is an HTTP 401, which looks like any failed connection (1006).
  const maybeRefused = e.tokenIn === "query" && !e.opened && e.canRenew;
  return { retry: true, newToken: maybeRefused };
}
