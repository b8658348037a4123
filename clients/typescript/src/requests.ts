// Requests waiting for their reply, by `id` (§2: every reply, errors included, carries the
// request's id). A request made while the client is not connected waits in a queue and is
// sent once the next connection is welcomed; one already sent when the connection goes
// fails with `disconnected`, since the hub may or may not have carried it out.

import type { ClientFrame, ServerFrame } from "./protocol.js";
import { RingHubError } from "./errors.js";

/** Called once with the reply (an `error` frame becomes a RingHubError). */
export type Settle = (result: { reply: ServerFrame } | { error: RingHubError }) => void;

interface Pending {
  frame: ClientFrame;
  sent: boolean;
  settle: Settle;
  timer: ReturnType<typeof setTimeout>;
}

export class Requests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /**
   * Registers `frame` under a new id; `settle` is called, synchronously as the reply is
   * read, with the reply. `send` is called now when given, else by `flush` later.
   */
  request(
    frame: ClientFrame,
    timeoutMs: number,
    send: ((frame: ClientFrame) => boolean) | null,
    settle: Settle,
  ): void {
    const id = this.nextId++;
    const withId = { ...frame, id } as ClientFrame;
    const timer = setTimeout(() => {
      this.pending.delete(id);
      settle({ error: new RingHubError("timeout", `no reply to ${frame.type} within ${timeoutMs} ms`) });
    }, timeoutMs);
    const entry: Pending = { frame: withId, sent: false, settle, timer };
    this.pending.set(id, entry);
    if (send) entry.sent = send(withId);
  }

  /** `request`, as a promise of the reply. */
  ask(
    frame: ClientFrame,
    timeoutMs: number,
    send: ((frame: ClientFrame) => boolean) | null,
  ): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      this.request(frame, timeoutMs, send, (r) => ("reply" in r ? resolve(r.reply) : reject(r.error)));
    });
  }

  /** Hands a reply to its request; false when no request waits for that id. */
  settle(frame: ServerFrame & { id?: number }): boolean {
    if (frame.id === undefined) return false;
    const entry = this.pending.get(frame.id);
    if (!entry) return false;
    this.pending.delete(frame.id);
    clearTimeout(entry.timer);
    entry.settle(frame.type === "error" ? { error: RingHubError.fromFrame(frame) } : { reply: frame });
    return true;
  }

  /** Sends the requests not sent yet, in the order they were made. */
  flush(send: (frame: ClientFrame) => boolean): void {
    for (const entry of this.pending.values()) {
      if (!entry.sent) entry.sent = send(entry.frame);
    }
  }

  /** The connection went: requests already sent fail; the others keep waiting. */
  connectionLost(): void {
    this.failWhere((e) => e.sent, "disconnected", "the connection closed before the reply");
  }

  /** The client stopped: every request fails. */
  closeAll(message: string): void {
    this.failWhere(() => true, "closed", message);
  }

  private failWhere(
    which: (entry: Pending) => boolean,
    code: "disconnected" | "closed",
    message: string,
  ): void {
    for (const [id, entry] of [...this.pending]) {
      if (!which(entry)) continue;
      this.pending.delete(id);
      clearTimeout(entry.timer);
      entry.settle({ error: new RingHubError(code, `${entry.frame.type}: ${message}`) });
    }
  }
}
