// @ringhub/client: the TypeScript client of ringhub (docs/protocol.md).

export { RingHubClient } from "./client.js";
export type {
  CallOptions,
  ClientEvents,
  ClientOptions,
  ConnectedEvent,
  ConnectingEvent,
  ConnectionState,
  DisconnectedEvent,
} from "./types.js";
export { Subscription } from "./subscription.js";
export type {
  SubscribedEvent,
  SubscriptionEvents,
  SubscriptionState,
  UnsubscribedEvent,
} from "./subscription.js";
export { RingHubError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { Backoff } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { Position } from "./position.js";
export { jsonCodec } from "./codec.js";
export type { Codec } from "./codec.js";
export type { GetToken } from "./tokens.js";
export type { SocketLike, WebSocketConstructor } from "./socket.js";
export * from "./protocol.js";
