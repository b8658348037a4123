// One channel the application subscribes to. The client sends `subscribe` whenever a
// connection is welcomed (with `since` on channels with history, §10), so a subscription
// outlives reconnects; its messages are deduplicated by offset (Position).

import { Emitter } from "./emitter.js";
import { RingHubError } from "./errors.js";
import { Position } from "./position.js";
import type {
  HistoryFrame,
  JoinFrame,
  Json,
  LeaveFrame,
  MessageFrame,
  PresenceUser,
  StatusFrame,
  StreamPosition,
  SubscribedFrame,
} from "./protocol.js";

export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";

export interface SubscribedEvent {
  channel: string;
  /** The channel's current offset and epoch (channels with history only). */
  offset?: number;
  epoch?: string;
  /**
   * Only when the subscribe carried `since`: true when the missed publications follow;
   * false when they are lost (the epoch changed, or the history no longer reaches back):
   * the application should reload its state.
   */
  recovered?: boolean;
  /** Why this subscribe was sent: the first time, after a reconnect, or after the hub ended the subscription on a gap it could not close (§10). */
  cause: "subscribe" | "reconnect" | "recovery_failed";
}

export interface UnsubscribedEvent {
  channel: string;
  /**
   * `client`: unsubscribe() was called; `server`: a backend unsubscribed the connection;
   * `error`: the subscribe was refused; `disconnected`: the connection of a backend's
   * subscription went (those are not renewed).
   */
  reason: "client" | "server" | "error" | "disconnected";
  error?: RingHubError;
}

export interface SubscriptionEvents {
  subscribed: SubscribedEvent;
  message: MessageFrame;
  unsubscribed: UnsubscribedEvent;
  join: JoinFrame;
  leave: LeaveFrame;
  status: StatusFrame;
  error: RingHubError;
}

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  sendSubscribe(sub: Subscription): void;
  sendUnsubscribe(sub: Subscription): Promise<void>;
  publish(channel: string, data: Json): Promise<{ offset?: number }>;
  presence(channel: string): Promise<PresenceUser[]>;
  history(channel: string, options?: { since?: number; limit?: number }): Promise<HistoryFrame>;
}

export class Subscription extends Emitter<SubscriptionEvents> {
  readonly position: Position;
  private stateValue: SubscriptionState = "subscribing";
  private nextCause: SubscribedEvent["cause"] = "subscribe";
  /** Whether `ready` has been resolved or rejected. */
  private settled = false;
  private readyResolve!: (event: SubscribedEvent) => void;
  private readyReject!: (error: RingHubError) => void;
  /** The first `subscribed` (or the refusal of the first subscribe). */
  readonly ready: Promise<SubscribedEvent>;

  constructor(
    readonly channel: string,
    private readonly host: SubscriptionHost,
    since?: StreamPosition,
    /** Made by a backend (§6), not by the application: not renewed after a reconnect. */
    private server = false,
  ) {
    super();
    this.position = new Position(since);
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Awaiting `ready` is optional: a refusal is also an `error` event.
    this.ready.catch(() => {});
  }

  get state(): SubscriptionState {
    return this.stateValue;
  }

  /** Whether a backend made it (§6) and the application did not ask for it too. */
  get serverSide(): boolean {
    return this.server;
  }

  /** The application subscribes to a channel a backend subscribed it to: renewed from now on. */
  adopt(): void {
    this.server = false;
  }

  /** The `since` to send, or none on a channel without history (or not seen yet). */
  since(): StreamPosition | undefined {
    return this.position.since();
  }

  publish(data: Json): Promise<{ offset?: number }> {
    return this.host.publish(this.channel, data);
  }

  presence(): Promise<PresenceUser[]> {
    return this.host.presence(this.channel);
  }

  history(options?: { since?: number; limit?: number }): Promise<HistoryFrame> {
    return this.host.history(this.channel, options);
  }

  /** Ends the subscription; no more events after this. */
  async unsubscribe(): Promise<void> {
    if (this.stateValue === "unsubscribed") return;
    this.ended({ channel: this.channel, reason: "client" });
    await this.host.sendUnsubscribe(this);
  }

  // ---- Called by the client -----------------------------------------------------------

  /** The connection went: the next welcome resubscribes. */
  connectionLost(): void {
    if (this.stateValue === "unsubscribed") return;
    this.stateValue = "subscribing";
    if (this.settled) this.nextCause = "reconnect";
  }

  /** The hub ended the subscription on a gap (§10): subscribe again at once, with `since`. */
  recoveryFailed(): void {
    if (this.stateValue === "unsubscribed") return;
    this.stateValue = "subscribing";
    this.nextCause = "recovery_failed";
    this.host.sendSubscribe(this);
  }

  handleSubscribed(reply: SubscribedFrame): void {
    if (this.stateValue === "unsubscribed") return;
    this.position.subscribed(reply);
    this.stateValue = "subscribed";
    const event: SubscribedEvent = { channel: this.channel, cause: this.nextCause };
    if (reply.offset !== undefined) event.offset = reply.offset;
    if (reply.epoch !== undefined) event.epoch = reply.epoch;
    if (reply.recovered !== undefined) event.recovered = reply.recovered;
    this.nextCause = "reconnect";
    this.settled = true;
    this.readyResolve(event);
    this.emit("subscribed", event);
  }

  /** The subscribe was refused: the subscription is over. */
  handleRefused(error: RingHubError): void {
    if (this.stateValue === "unsubscribed") return;
    this.ended({ channel: this.channel, reason: "error", error });
    this.emit("error", error);
  }

  /** True when the message is new and was delivered; false for a duplicate. */
  handleMessage(frame: MessageFrame): boolean {
    if (this.stateValue === "unsubscribed") return false;
    if (!this.position.accept(frame.offset)) return false;
    this.emit("message", frame);
    return true;
  }

  handlePresence(frame: JoinFrame | LeaveFrame | StatusFrame): void {
    if (this.stateValue === "unsubscribed") return;
    if (frame.type === "join") this.emit("join", frame);
    else if (frame.type === "leave") this.emit("leave", frame);
    else this.emit("status", frame);
  }

  /** Ended by a backend, or with the connection of a backend's subscription. */
  handleEnded(reason: "server" | "disconnected"): void {
    if (this.stateValue === "unsubscribed") return;
    this.ended({ channel: this.channel, reason });
  }

  private ended(event: UnsubscribedEvent): void {
    this.stateValue = "unsubscribed";
    if (!this.settled) {
      this.settled = true;
      this.readyReject(
        event.error ?? new RingHubError("closed", `${this.channel}: unsubscribed (${event.reason})`),
      );
    }
    this.emit("unsubscribed", event);
  }
}
