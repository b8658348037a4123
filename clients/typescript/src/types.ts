// The client's options, the events it emits, and the shape of its connection's state.

import type { BackoffOptions } from "./backoff.js";
import type { Codec } from "./codec.js";
import type { RingHubError } from "./errors.js";
import type {
  BroadcastFrame,
  DirectFrame,
  JoinFrame,
  LeaveFrame,
  MessageFrame,
  StatusFrame,
} from "./protocol.js";
import type { WebSocketConstructor } from "./socket.js";
import type { Subscription } from "./subscription.js";
import type { GetToken } from "./tokens.js";

export type ConnectionState = "disconnected" | "connecting" | "connected";

export interface ClientOptions {
  /** `ws://host:port/ws`; with several, each reconnect tries the next (another instance). */
  url: string | string[];
  /** A fixed token; with getToken too, the first connection uses it. */
  token?: string;
  /** Asked for a token at connect time when there is none good in hand, and on `expiring`. Returning null (or throwing) stops the client. */
  getToken?: GetToken;
  /** Where the token goes (§1): the first frame (default: refusals then come as close codes 4001/4004), or the query. */
  tokenIn?: "frame" | "query";
  /** The `client=` kind reported to the hub (`web`, `ios`, `bot`, …). */
  clientKind?: string;
  /** The WebSocket constructor; default the global one (browsers, Node 22+). In Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
  /** How frames are encoded; JSON, the only encoding the hub speaks today. */
  codec?: Codec;
  backoff?: BackoffOptions;
  /** How long a request waits for its reply. Default 10 s. */
  requestTimeoutMs?: number;
  /** How long an rpc waits for its result. Default 10 s (the hub gives up at its rpc_timeout, 5 s by default). */
  rpcTimeoutMs?: number;
  /** How long an opened socket may take to be welcomed. Default 10 s. */
  connectTimeoutMs?: number;
}

export interface CallOptions {
  timeoutMs?: number;
  /** Written into the ingress entries the request causes (§7). */
  correlationId?: string;
}

export interface ConnectingEvent {
  /** 1 for the first attempt since connect(), counting up until a welcome. */
  attempt: number;
  /** How long the client waits before this attempt. */
  delayMs: number;
  /** The close code and reason of the connection lost (1006: dropped or refused). */
  code?: number;
  reason?: string;
}

export interface ConnectedEvent {
  conn: string;
  user: string;
  instance: string;
  shard: number;
  /** The token's `exp`, Unix seconds. */
  expiresAt: number;
  url: string;
}

/** The client stopped for good: close(), a close code that forbids retrying, no token. */
export interface DisconnectedEvent {
  code: number;
  reason: string;
  error?: RingHubError;
}

export interface ClientEvents {
  state: { state: ConnectionState; previous: ConnectionState };
  connecting: ConnectingEvent;
  connected: ConnectedEvent;
  disconnected: DisconnectedEvent;
  /** Every message delivered, whether or not the application holds a Subscription for it. */
  message: MessageFrame;
  direct: DirectFrame;
  broadcast: BroadcastFrame;
  join: JoinFrame;
  leave: LeaveFrame;
  status: StatusFrame;
  /** A backend subscribed the connection (§6). */
  subscribed: Subscription;
  expiring: { expiresAt: number };
  refreshed: { expiresAt: number };
  /** The hub is draining: the client connects again after `afterMs` (§5). */
  reconnect: { afterMs: number };
  /** An error that belongs to no request: a failed refresh, an id-less error frame. */
  error: RingHubError;
}
