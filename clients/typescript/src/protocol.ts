// The frames of ringhub's WebSocket protocol, written by hand from docs/protocol.md
// (§1 connecting, §2 frames, §3 presence, §4 liveness, §5 close codes, §9 rpc, §10
// history). Section numbers below point there. Every frame is one JSON object; fields
// that neither side knows are ignored, so each server frame type allows more fields.

/** Any JSON value: the `data` of publications, direct messages and rpc. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A position in a channel's history: the offset means something only with its epoch (§10). */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** The presence status a user can set (§2 `status`, §3). */
export type PresenceStatus = "online" | "away";

// ---- Client requests (§2 "Client requests") ------------------------------------------

interface Request {
  /** Chosen by the client; every reply to the request, errors included, carries it. */
  id?: number;
  /** 1 to 128 bytes, written into the ingress entries the request causes (§7). */
  correlation_id?: string;
}

export interface AuthRequest extends Request {
  type: "auth";
  token: string;
}
export interface SubscribeRequest extends Request {
  type: "subscribe";
  channel: string;
  since?: StreamPosition;
  /** Take the channel's publications as Fossil deltas (docs/protocol.md §3, "Deltas"). */
  delta?: "fossil";
}
export interface UnsubscribeRequest extends Request {
  type: "unsubscribe";
  channel: string;
}
export interface PublishRequest extends Request {
  type: "publish";
  channel: string;
  data: Json;
}
export interface SendRequest extends Request {
  type: "send";
  user: string;
  data: Json;
}
export interface PresenceRequest extends Request {
  type: "presence";
  channel: string;
}
export interface HistoryRequest extends Request {
  type: "history";
  channel: string;
  /** A bare offset; `{"offset":N}` is accepted by the hub too (§10). */
  since?: number;
  /** Defaults to 100 on the hub, clamped to 1..10,000. */
  limit?: number;
}
export interface StatusRequest extends Request {
  type: "status";
  status: PresenceStatus;
}
export interface RefreshRequest extends Request {
  type: "refresh";
  token: string;
}
export interface RpcRequest extends Request {
  type: "rpc";
  method: string;
  data: Json;
}
export interface EventRequest extends Request {
  type: "event";
  event: string;
  data: Json;
}
export interface PingRequest extends Request {
  type: "ping";
}

export type ClientFrame =
  | AuthRequest
  | SubscribeRequest
  | UnsubscribeRequest
  | PublishRequest
  | SendRequest
  | PresenceRequest
  | HistoryRequest
  | StatusRequest
  | RefreshRequest
  | RpcRequest
  | EventRequest
  | PingRequest;

// ---- Replies (§2 "Replies") ------------------------------------------------------------

export interface WelcomeFrame {
  type: "welcome";
  id?: number;
  /** Hexadecimal connection id, unique within the instance. */
  conn: string;
  user: string;
  instance: string;
  shard: number;
  ping_interval_ms: number;
  /** The token's `exp`, Unix seconds. */
  expires_at: number;
}

/**
 * A reply to `subscribe`, or (without `id`) a backend subscribing the connection (§6).
 * `offset` and `epoch` only on channels with history; `recovered` only when the
 * subscribe carried `since`.
 */
export interface SubscribedFrame {
  type: "subscribed";
  id?: number;
  channel: string;
  offset?: number;
  epoch?: string;
  recovered?: boolean;
}

/**
 * A reply to `unsubscribe`; without `id`, a backend unsubscribed the connection (§6), or,
 * with `reason: "recovery_failed"`, the hub ended a history subscription that missed
 * publications it can no longer recover (§10 "Gaps while subscribed").
 */
export interface UnsubscribedFrame {
  type: "unsubscribed";
  id?: number;
  channel: string;
  reason?: string;
}

export interface AckFrame {
  type: "ack";
  id?: number;
  /** The publication's offset, on channels with history. */
  offset?: number;
}

export interface PresenceUser {
  user: string;
  /** That user's connections subscribed to the channel, cluster-wide with Redis. */
  conns: number;
  status: PresenceStatus;
  info: { [key: string]: Json };
}

export interface PresenceFrame {
  type: "presence";
  id?: number;
  channel: string;
  users: PresenceUser[];
}

export interface Publication {
  offset: number;
  /** Left out for publications made by backends. */
  from?: string;
  /** Time of publication, Unix ms. */
  ts: number;
  data: Json;
}

export interface HistoryFrame {
  type: "history";
  id?: number;
  channel: string;
  epoch: string;
  publications: Publication[];
}

export interface RefreshedFrame {
  type: "refreshed";
  id?: number;
  expires_at: number;
}

export interface ResultFrame {
  type: "result";
  id?: number;
  data: Json;
}

export interface PongFrame {
  type: "pong";
  id?: number;
}

/** The error codes of §2 "Errors". */
export type ProtocolErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "rate_limited"
  | "too_large"
  | "limit_exceeded"
  | "unavailable"
  | "timeout"
  | "internal";

export interface ErrorFrame {
  type: "error";
  id?: number;
  code: ProtocolErrorCode;
  message: string;
  /** How long to wait before asking again: with `rate_limited` (at least 1), and with some `unavailable` answers. */
  retry_after_ms?: number;
}

// ---- Frames the hub sends unasked (§2) ---------------------------------------------

export interface MessageFrame {
  type: "message";
  channel: string;
  data: Json;
  /** The publishing user, unless a backend published it. */
  from?: string;
  /** On channels with history. */
  offset?: number;
  /** On a subscription taken as deltas: `data` is a string, whole (false) or a Fossil
   * delta against the previous publication's text (true). */
  delta?: boolean;
}
export interface DirectFrame {
  type: "direct";
  data: Json;
  from?: string;
}
export interface BroadcastFrame {
  type: "broadcast";
  data: Json;
}
export interface JoinFrame {
  type: "join";
  channel: string;
  user: string;
  info: { [key: string]: Json };
}
export interface LeaveFrame {
  type: "leave";
  channel: string;
  user: string;
  info: { [key: string]: Json };
}
export interface StatusFrame {
  type: "status";
  channel: string;
  user: string;
  status: PresenceStatus;
}
export interface ExpiringFrame {
  type: "expiring";
  /** Send `refresh` before this time (Unix seconds), or the hub closes with 4001. */
  expires_at: number;
}
export interface ReconnectFrame {
  type: "reconnect";
  /** This hub is going away: wait that many milliseconds, then connect again (§5). */
  after_ms: number;
}

export type ServerFrame =
  | WelcomeFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | AckFrame
  | PresenceFrame
  | HistoryFrame
  | RefreshedFrame
  | ResultFrame
  | PongFrame
  | ErrorFrame
  | MessageFrame
  | DirectFrame
  | BroadcastFrame
  | JoinFrame
  | LeaveFrame
  | StatusFrame
  | ExpiringFrame
  | ReconnectFrame;

/** The `reason` of an unsolicited `unsubscribed` when the hub lost publications (§10). */
export const RECOVERY_FAILED = "recovery_failed";

/** The close codes of §5 (1005 and 1006 are never sent, only seen locally). */
export const CloseCode = {
  /** The client closed normally. */
  Normal: 1000,
  /** The hub is draining or shutting down, after a `reconnect` frame. */
  Draining: 1001,
  ProtocolError: 1002,
  NoStatus: 1005,
  /** The connection dropped without a close frame (or the upgrade was refused). */
  Abnormal: 1006,
  InvalidUtf8: 1007,
  MalformedFrames: 1008,
  TooLarge: 1009,
  PingTimeout: 1011,
  /** No or invalid authentication, or the token expired without a refresh. */
  Unauthorized: 4001,
  /** Too many connections for this user on the instance. */
  TooManyConnections: 4003,
  /** Disconnected by a backend, or the token was revoked. */
  Disconnected: 4004,
  SlowConsumer: 4009,
  RateLimited: 4029,
} as const;
