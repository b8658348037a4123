// The ringhub client: one WebSocket at a time, opened again with backoff when it goes
// (honouring the hub's close codes, §5, and its `reconnect` frame on drains), with the
// token from the application's getToken (§1, refreshed on `expiring`, §4), and the
// application's subscriptions renewed on every connection (recovering with `since`, §10).

import { Backoff } from "./backoff.js";
import { jsonCodec } from "./codec.js";
import { Emitter } from "./emitter.js";
import { RingHubError, type ErrorCode } from "./errors.js";
import {
  CloseCode,
  RECOVERY_FAILED,
  type AckFrame,
  type ClientFrame,
  type HistoryFrame,
  type Json,
  type PresenceFrame,
  type PresenceStatus,
  type PresenceUser,
  type RefreshedFrame,
  type ResultFrame,
  type ServerFrame,
  type StreamPosition,
  type SubscribedFrame,
  type WelcomeFrame,
} from "./protocol.js";
import { Connection, type ConnectionSettings } from "./connection.js";
import { afterClose } from "./reconnect.js";
import { Requests } from "./requests.js";
import { resolveWebSocket } from "./socket.js";
import { Subscription, type SubscriptionHost } from "./subscription.js";
import { TokenSource } from "./tokens.js";
import type { CallOptions, ClientEvents, ClientOptions, ConnectedEvent, ConnectionState } from "./types.js";

/** Codes worth asking again for, after a pause. */
const TRANSIENT: ErrorCode[] = ["rate_limited", "unavailable", "timeout"];
/** A connection that lasted this long resets the backoff when it goes. */
const STABLE_MS = 5_000;

export class RingHubClient extends Emitter<ClientEvents> implements SubscriptionHost {
  private readonly urls: string[];
  private readonly tokens: TokenSource;
  private readonly backoff: Backoff;
  private readonly requests = new Requests();
  private readonly subs = new Map<string, Subscription>();
  private stateValue: ConnectionState = "disconnected";
  private readonly settings: ConnectionSettings;
  private connection: Connection | null = null;
  private current: ConnectedEvent | null = null;
  /** Bumped by every attempt and by stop(): a stale callback compares and gives up. */
  private generation = 0;
  private wanted = false;
  private attempt = 0;
  private urlIndex = -1;
  private authFailures = 0;
  private drainDelayMs: number | null = null;
  private welcomedAt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: ClientOptions) {
    super();
    this.urls = Array.isArray(options.url) ? [...options.url] : [options.url];
    if (this.urls.length === 0) throw new Error("ringhub: no url");
    this.settings = {
      WebSocket: resolveWebSocket(options.WebSocket),
      codec: options.codec ?? jsonCodec,
      tokenIn: options.tokenIn ?? "frame",
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      ...(options.clientKind ? { clientKind: options.clientKind } : {}),
    };
    this.tokens = new TokenSource(options.token, options.getToken);
    if (!options.token && !options.getToken) throw new Error("ringhub: give token or getToken");
    this.backoff = new Backoff(options.backoff);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The current connection's welcome, while connected. */
  get session(): ConnectedEvent | null {
    return this.current;
  }

  /** Opens the connection, and keeps it open until close() or a refusal for good. */
  connect(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.attempt = 0;
    this.authFailures = 0;
    this.drainDelayMs = null;
    this.backoff.reset();
    this.schedule(0);
  }

  /** Closes the connection; subscriptions are kept for a later connect(). */
  close(): void {
    this.stop(CloseCode.Normal, "closed by the client");
  }

  /** The channel's subscription: new, or the one the client already has. */
  subscribe(channel: string, options: { since?: StreamPosition } = {}): Subscription {
    const existing = this.subs.get(channel);
    if (existing && existing.state !== "unsubscribed") {
      existing.adopt();
      return existing;
    }
    const sub = new Subscription(channel, this, options.since);
    this.subs.set(channel, sub);
    this.sendSubscribe(sub);
    return sub;
  }

  subscription(channel: string): Subscription | undefined {
    return this.subs.get(channel);
  }

  async publish(channel: string, data: Json, options?: CallOptions): Promise<{ offset?: number }> {
    const ack = (await this.call({ type: "publish", channel, data }, options)) as AckFrame;
    return ack.offset === undefined ? {} : { offset: ack.offset };
  }

  /** A direct message to every connection of `user` in the cluster. */
  async send(user: string, data: Json, options?: CallOptions): Promise<void> {
    await this.call({ type: "send", user, data }, options);
  }

  async rpc(method: string, data: Json, options?: CallOptions): Promise<Json> {
    const timeoutMs = options?.timeoutMs ?? this.options.rpcTimeoutMs ?? 10_000;
    const result = (await this.call({ type: "rpc", method, data }, { ...options, timeoutMs })) as ResultFrame;
    return result.data;
  }

  async presence(channel: string, options?: CallOptions): Promise<PresenceUser[]> {
    return ((await this.call({ type: "presence", channel }, options)) as PresenceFrame).users;
  }

  async history(
    channel: string,
    query: { since?: number; limit?: number } = {},
    options?: CallOptions,
  ): Promise<HistoryFrame> {
    return (await this.call({ type: "history", channel, ...query }, options)) as HistoryFrame;
  }

  async setStatus(status: PresenceStatus, options?: CallOptions): Promise<void> {
    await this.call({ type: "status", status }, options);
  }

  /** An event for the backends, appended to the ingress stream (§7). */
  async event(event: string, data: Json, options?: CallOptions): Promise<void> {
    await this.call({ type: "event", event, data }, options);
  }

  async ping(options?: CallOptions): Promise<void> {
    await this.call({ type: "ping" }, options);
  }

  // ---- SubscriptionHost ---------------------------------------------------------------

  /** Sends the subscription's `subscribe` when connected; the next welcome does it otherwise. */
  sendSubscribe(sub: Subscription): void {
    if (this.stateValue !== "connected" || sub.state !== "subscribing") return;
    const since = sub.since();
    const frame: ClientFrame = { type: "subscribe", channel: sub.channel, ...(since ? { since } : {}) };
    // Settled as the reply is read, before the frames after it (the replay) are.
    this.requests.request(frame, this.timeout(), (f) => this.sendRaw(f), (result) => {
      if (this.subs.get(sub.channel) !== sub) return;
      if ("reply" in result) {
        sub.handleSubscribed(result.reply as SubscribedFrame);
        return;
      }
      const { error } = result;
      if (error.code === "disconnected" || error.code === "closed") return;
      if (TRANSIENT.includes(error.code)) {
        setTimeout(() => this.sendSubscribe(sub), error.retryAfterMs ?? 1000);
        return;
      }
      this.subs.delete(sub.channel);
      sub.handleRefused(error);
    });
  }

  async sendUnsubscribe(sub: Subscription): Promise<void> {
    if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
    if (this.stateValue !== "connected") return;
    try {
      await this.request({ type: "unsubscribe", channel: sub.channel }, this.timeout());
    } catch (error) {
      if ((error as RingHubError).code !== "disconnected") throw error;
    }
  }

  // ---- Requests -----------------------------------------------------------------------

  private call(frame: ClientFrame, options?: CallOptions): Promise<ServerFrame> {
    if (!this.wanted) {
      return Promise.reject(new RingHubError("closed", `${frame.type}: the client is not connected`));
    }
    const withCorrelation = options?.correlationId
      ? ({ ...frame, correlation_id: options.correlationId } as ClientFrame)
      : frame;
    return this.request(withCorrelation, options?.timeoutMs ?? this.timeout());
  }

  private request(frame: ClientFrame, timeoutMs: number): Promise<ServerFrame> {
    const send = this.stateValue === "connected" ? (f: ClientFrame) => this.sendRaw(f) : null;
    return this.requests.ask(frame, timeoutMs, send);
  }

  private timeout(): number {
    return this.options.requestTimeoutMs ?? 10_000;
  }

  private sendRaw(frame: ClientFrame): boolean {
    return this.connection?.send(frame) ?? false;
  }

  // ---- The connection -----------------------------------------------------------------

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    const previous = this.stateValue;
    this.stateValue = state;
    this.emit("state", { state, previous });
  }

  private schedule(delayMs: number, lost?: { code: number; reason: string }): void {
    this.setState("connecting");
    this.emit("connecting", { attempt: this.attempt + 1, delayMs, ...lost });
    this.retryTimer = setTimeout(() => void this.open(), delayMs);
  }

  private async open(): Promise<void> {
    this.retryTimer = null;
    const generation = ++this.generation;
    this.attempt += 1;
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    const url = this.urls[this.urlIndex]!;
    let token: string | null;
    try {
      token = await this.tokens.forConnect();
    } catch (e) {
      if (generation !== this.generation) return;
      const error = new RingHubError("unauthorized", `getToken failed: ${String(e)}`);
      this.stop(CloseCode.Unauthorized, error.message, error);
      return;
    }
    if (generation !== this.generation) return;
    if (token === null) {
      const error = new RingHubError("unauthorized", "no token to connect with");
      this.stop(CloseCode.Unauthorized, error.message, error);
      return;
    }
    const connection = new Connection(this.settings, url, token, {
      welcome: (frame) => this.welcomed(connection, frame),
      frame: (frame) => this.receive(frame),
      lost: (code, reason, opened) => {
        if (this.connection === connection) this.lost(code, reason, opened);
      },
    });
    this.connection = connection;
    connection.open();
  }

  /** The connection went: decide, from its close code (§5), whether and when to retry. */
  private lost(code: number, reason: string, opened: boolean): void {
    this.connection = null;
    const lasted = this.current ? Date.now() - this.welcomedAt : 0;
    this.current = null;
    this.requests.connectionLost();
    for (const [channel, sub] of [...this.subs]) {
      if (!sub.serverSide) {
        sub.connectionLost();
        continue;
      }
      this.subs.delete(channel);
      sub.handleEnded("disconnected");
    }
    if (!this.wanted) return;
    if (code === CloseCode.Unauthorized) this.authFailures += 1;
    const decision = afterClose({
      code,
      reason,
      opened,
      tokenIn: this.settings.tokenIn,
      canRenew: this.tokens.canRenew,
      authFailures: this.authFailures,
    });
    if ("stop" in decision) {
      this.stop(code, reason, decision.stop);
      return;
    }
    if (decision.newToken) this.tokens.refused();
    if (lasted >= STABLE_MS) this.backoff.reset();
    let delayMs: number;
    if (this.drainDelayMs !== null) {
      delayMs = this.drainDelayMs;
      this.drainDelayMs = null;
    } else {
      delayMs = this.backoff.next();
    }
    this.schedule(delayMs, { code, reason });
  }

  private stop(code: number, reason: string, error?: RingHubError): void {
    const wasStopped = !this.wanted && this.stateValue === "disconnected";
    this.wanted = false;
    this.generation += 1;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const connection = this.connection;
    if (connection) {
      connection.close();
      this.lost(code, reason, true);
    }
    this.requests.closeAll(reason);
    if (wasStopped) return;
    this.setState("disconnected");
    this.emit("disconnected", error ? { code, reason, error } : { code, reason });
  }

  // ---- Frames from the hub ------------------------------------------------------------

  private receive(frame: ServerFrame): void {
    switch (frame.type) {
      case "message": {
        const sub = this.subs.get(frame.channel);
        if (sub && !sub.handleMessage(frame)) return;
        this.emit("message", frame);
        return;
      }
      case "join":
      case "leave":
      case "status":
        this.subs.get(frame.channel)?.handlePresence(frame);
        if (frame.type === "join") this.emit("join", frame);
        else if (frame.type === "leave") this.emit("leave", frame);
        else this.emit("status", frame);
        return;
      case "direct":
        this.emit("direct", frame);
        return;
      case "broadcast":
        this.emit("broadcast", frame);
        return;
      case "expiring":
        this.emit("expiring", { expiresAt: frame.expires_at });
        void this.refresh(this.generation);
        return;
      case "reconnect":
        this.drainDelayMs = Math.max(0, frame.after_ms);
        this.emit("reconnect", { afterMs: this.drainDelayMs });
        return;
    }
    if (this.requests.settle(frame)) return;
    if (frame.type === "subscribed") this.serverSubscribed(frame);
    else if (frame.type === "unsubscribed") {
      const sub = this.subs.get(frame.channel);
      if (!sub) return;
      if (frame.reason === RECOVERY_FAILED) {
        sub.recoveryFailed();
        return;
      }
      this.subs.delete(frame.channel);
      sub.handleEnded("server");
    } else if (frame.type === "error") this.emit("error", RingHubError.fromFrame(frame));
  }

  private welcomed(connection: Connection, frame: WelcomeFrame): void {
    if (this.connection !== connection) return;
    this.tokens.accepted(connection.token, frame.expires_at);
    this.authFailures = 0;
    this.attempt = 0;
    this.drainDelayMs = null;
    this.welcomedAt = Date.now();
    const { conn, user, instance, shard } = frame;
    this.current = { conn, user, instance, shard, expiresAt: frame.expires_at, url: connection.url };
    this.setState("connected");
    this.emit("connected", this.current);
    for (const sub of this.subs.values()) this.sendSubscribe(sub);
    this.requests.flush((f) => this.sendRaw(f));
  }

  /** A backend subscribed the connection (§6): a Subscription of its own, not renewed. */
  private serverSubscribed(frame: SubscribedFrame): void {
    if (this.subs.has(frame.channel)) return;
    const sub = new Subscription(frame.channel, this, undefined, true);
    this.subs.set(frame.channel, sub);
    sub.handleSubscribed(frame);
    this.emit("subscribed", sub);
  }

  /** Answers `expiring` with a new token from getToken (§4). */
  private async refresh(generation: number): Promise<void> {
    if (!this.tokens.canRenew) return;
    let token: string | null;
    try {
      token = await this.tokens.fresh();
    } catch (e) {
      this.emit("error", new RingHubError("unauthorized", `getToken failed: ${String(e)}`));
      return;
    }
    if (generation !== this.generation || this.stateValue !== "connected") return;
    if (token === null) {
      this.emit("error", new RingHubError("unauthorized", "getToken gave no token to refresh with"));
      return;
    }
    try {
      const reply = (await this.request({ type: "refresh", token }, this.timeout())) as RefreshedFrame;
      this.tokens.accepted(token, reply.expires_at);
      if (this.current) this.current.expiresAt = reply.expires_at;
      this.emit("refreshed", { expiresAt: reply.expires_at });
    } catch (e) {
      const error = e as RingHubError;
      if (error.code === "disconnected" || error.code === "closed") return;
      if (TRANSIENT.includes(error.code) && generation === this.generation) {
        setTimeout(() => void this.refresh(generation), error.retryAfterMs ?? 1000);
        return;
      }
      this.emit("error", error);
    }
  }
}
