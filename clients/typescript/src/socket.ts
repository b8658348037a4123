// The WebSocket the client runs on: the browser's global one, or a constructor the
// application hands in (in Node 20, where the global WebSocket needs
// --experimental-websocket, the `ws` package's), and the URL it is opened with.

/** The part of a WebSocket the client uses; the DOM's and `ws`'s both fit. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  // `any`: the DOM's and ws's event types differ, and only `data`, `code`, `reason` are read.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onopen: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onmessage: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onclose: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onerror: ((event: any) => void) | null;
  send(data: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => SocketLike;

/** The WebSocket.OPEN ready state, the same in every implementation. */
export const OPEN = 1;

/** The injected constructor, else the global one; throws when there is neither. */
export function resolveWebSocket(injected?: WebSocketConstructor): WebSocketConstructor {
  if (injected) return injected;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return global;
  throw new Error(
    "ringhub: no WebSocket: pass one as the `WebSocket` option " +
      "(in Node 20: `import WebSocket from \"ws\"`, or run node with --experimental-websocket)",
  );
}

/**
 * The URL to open: `url` (in a page, it may be relative to the page, and `http(s):` stands
 * for `ws(s):`) with `client=<kind>` and, when the token goes in the query, `token=<jwt>`
 * (§1; the hub percent-decodes both).
 */
export function socketUrl(url: string, token: string | null, clientKind?: string): string {
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  const u = new URL(url, page);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (clientKind) u.searchParams.set("client", clientKind);
  if (token !== null) u.searchParams.set("token", token);
  return u.toString();
}
