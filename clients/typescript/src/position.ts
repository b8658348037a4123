// Where a subscription stands in its channel's history (§10), and the rule that makes
// each publication reach the application once, in order: a message whose offset is not
// past the last one delivered is a duplicate (a replay overlapping what was already seen).

import type { StreamPosition, SubscribedFrame } from "./protocol.js";

export class Position {
  /** The last offset delivered (or the position subscribed at); null: no history seen. */
  offset: number | null = null;
  /** The epoch that offset belongs to; "" when the hub answered without Redis. */
  epoch: string | null = null;
  /** Messages dropped as already delivered. */
  duplicates = 0;

  constructor(since?: StreamPosition) {
    if (since) {
      this.offset = since.offset;
      this.epoch = since.epoch;
    }
  }

  /** The `since` of the next subscribe: set once the channel is known to keep history. */
  since(): StreamPosition | undefined {
    if (this.offset === null) return undefined;
    return { offset: this.offset, epoch: this.epoch ?? "" };
  }

  /**
   * Takes a `subscribed` reply. With `recovered: true` the missed publications follow
   * the reply, so the position stays; otherwise (`recovered: false`, or no `since`) the
   * application carries on from the channel's current offset.
   */
  subscribed(reply: SubscribedFrame): void {
    if (reply.offset === undefined) {
      this.offset = null;
      this.epoch = null;
      return;
    }
    if (reply.recovered === true && this.offset !== null) {
      this.epoch = reply.epoch ?? this.epoch;
      return;
    }
    this.offset = reply.offset;
    this.epoch = reply.epoch ?? "";
  }

  /** Whether a message with this offset is to be delivered (and, if so, moves past it). */
  accept(offset: number | undefined): boolean {
    if (offset === undefined) return true;
    if (this.offset !== null && offset <= this.offset) {
      this.duplicates += 1;
      return false;
    }
    this.offset = offset;
    return true;
  }
}
