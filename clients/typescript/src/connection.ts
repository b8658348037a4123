// One WebSocket to the hub, from opening to close: the token in the query or the first
// frame (§1), the wait for `welcome`, and a check that the hub is still there (§4). It
// reports frames and its end to the client, once; the client decides what comes next.

import type { Codec } from "./codec.js";
import { CloseCode, type ServerFrame, type WelcomeFrame } from "./protocol.js";
import { OPEN, socketUrl, type SocketLike, type WebSocketConstructor } from "./socket.js";

export interface ConnectionSettings {
  WebSocket: WebSocketConstructor;
  codec: Codec;
  tokenIn: "frame" | "query";
  clientKind?: string;
  connectTimeoutMs: number;
}

export interface ConnectionHandlers {
  welcome(frame: WelcomeFrame): void;
  frame(frame: ServerFrame): void;
  /** The end: the close code (1006 when the socket dropped, failed, or went quiet). */
  lost(code: number, reason: string, opened: boolean): void;
}

export class Connection {
  private socket: SocketLike | null = null;
  private opened = false;
  private lastReceived = 0;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private livenessTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly settings: ConnectionSettings,
    readonly url: string,
    readonly token: string,
    private readonly handlers: ConnectionHandlers,
  ) {}

  /** Opens the socket; a failure to even try is reported as a lost connection. */
  open(): void {
    const { WebSocket, codec, tokenIn, clientKind, connectTimeoutMs } = this.settings;
    const inQuery = tokenIn === "query";
    let socket: SocketLike;
    try {
      socket = new WebSocket(socketUrl(this.url, inQuery ? this.token : null, clientKind));
    } catch (e) {
      this.handlers.lost(CloseCode.Abnormal, String(e), false);
      return;
    }
    socket.binaryType = codec.binaryType;
    this.socket = socket;
    socket.onopen = () => {
      this.opened = true;
      if (!inQuery) this.send({ type: "auth", token: this.token });
    };
    socket.onmessage = (event: { data: unknown }) => this.receive(event.data);
    socket.onclose = (event: { code: number; reason: string }) => this.end(event.code, event.reason);
    socket.onerror = () => {};
    this.connectTimer = setTimeout(
      () => this.abandon(`no welcome within ${connectTimeoutMs} ms`),
      connectTimeoutMs,
    );
  }

  /** Sends a frame; false when the socket is not open. */
  send(frame: Parameters<Codec["encode"]>[0]): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false;
    this.socket.send(this.settings.codec.encode(frame));
    return true;
  }

  /** Closes from this side; nothing more is reported. */
  close(code: number = CloseCode.Normal): void {
    const socket = this.detach();
    try {
      socket?.close(code);
    } catch {
      // A socket still connecting may refuse to close politely; it is dropped either way.
    }
  }

  private receive(data: unknown): void {
    const frame = this.settings.codec.decode(data);
    if (!frame) return;
    this.lastReceived = Date.now();
    if (frame.type === "welcome" && this.connectTimer) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
      this.watchLiveness(frame.ping_interval_ms);
      this.handlers.welcome(frame);
      return;
    }
    this.handlers.frame(frame);
  }

  /** Forgets the socket: its events no longer reach anyone. */
  private detach(): SocketLike | null {
    const socket = this.socket;
    if (socket) socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    this.socket = null;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.connectTimer = this.livenessTimer = null;
    return socket;
  }

  private end(code: number, reason: string): void {
    if (!this.socket) return;
    this.detach();
    this.handlers.lost(code, reason, this.opened);
  }

  /** Gives up on a socket that went quiet, without waiting for its close handshake. */
  private abandon(reason: string): void {
    if (!this.socket) return;
    this.close();
    this.handlers.lost(CloseCode.Abnormal, reason, this.opened);
  }

  /**
   * Browsers answer the hub's pings without telling the page, so the hub's silence is
   * measured on frames: after an interval with none, a `ping` (its `pong` carries id 0,
   * which no request uses); after a second, the connection is given up.
   */
  private watchLiveness(intervalMs: number): void {
    if (!(intervalMs > 0)) return;
    let probing = false;
    this.livenessTimer = setInterval(() => {
      if (Date.now() - this.lastReceived < intervalMs) {
        probing = false;
        return;
      }
      if (probing) {
        this.abandon("the hub did not answer a ping");
        return;
      }
      probing = true;
      this.send({ type: "ping", id: 0 });
    }, intervalMs);
  }
}
