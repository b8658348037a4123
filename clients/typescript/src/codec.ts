// How frames become WebSocket messages. JSON text frames are the only encoding the hub
// speaks today (§2); a binary encoding (protobuf) or compression would be another Codec,
// chosen at connect time, without touching the client's logic.

import type { ClientFrame, ServerFrame } from "./protocol.js";

export interface Codec {
  /** Names the codec; a future one may need a query parameter or subprotocol. */
  readonly name: string;
  /** The WebSocket `binaryType` the codec expects incoming binary frames in. */
  readonly binaryType: "arraybuffer" | "blob";
  encode(frame: ClientFrame): string | ArrayBuffer;
  /** The frame, or null for a message that is not a frame of this encoding. */
  decode(message: unknown): ServerFrame | null;
}

export const jsonCodec: Codec = {
  name: "json",
  binaryType: "arraybuffer",
  encode(frame) {
    return JSON.stringify(frame);
  },
  decode(message) {
    if (typeof message !== "string") return null;
    let value: unknown;
    try {
      value = JSON.parse(message);
    } catch {
      return null;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
    if (typeof (value as { type?: unknown }).type !== "string") return null;
    return value as ServerFrame;
  },
};
