// uws-hub: uWebSockets.js (20.x, npm `uwebsockets` 3.0.6) speaking the subset of
// docs/protocol.md that baseline-hub speaks, as a second baseline for bench/compare.sh.
//
// Token in the `token` query parameter or `Authorization: Bearer`, HS256 checked at the
// upgrade against a key object made once (no JWT library: one HMAC per upgrade). Then
// `welcome`, `subscribe`/`subscribed`, `publish`/`ack`, `message`, `ping`/`pong`, with
// uWS's native topics (`ws.subscribe`, `app.publish`). uWS pings a connection idle for
// about `--idle-timeout` minus a margin (40 s: a ping after 24 s idle, closed 16 s later),
// near ringhub's 25 s + 10 s. A subscriber more than `--max-backpressure` bytes behind has
// messages dropped, not its connection closed; the drops are counted, and shown by
// `GET /stats` and on SIGTERM / SIGINT.
//
//   node bench/uws/server.js --listen 127.0.0.1:8095 --secret bench-secret
'use strict';

const crypto = require('crypto');
const uWS = require('uwebsockets');

function args(argv) {
  const o = { listen: '127.0.0.1:8095', secret: process.env.RINGHUB_JWT_SECRET || '',
    idleTimeout: 40, maxBackpressure: 4 << 20 };
  for (let i = 2; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--listen') o.listen = v;
    else if (k === '--secret') o.secret = v;
    else if (k === '--idle-timeout') o.idleTimeout = Number(v);
    else if (k === '--max-backpressure') o.maxBackpressure = Number(v);
    else throw new Error(`unknown option ${k}`);
  }
  if (!o.secret) throw new Error('--secret (or RINGHUB_JWT_SECRET) is required');
  return o;
}

const opts = args(process.argv);
const key = crypto.createSecretKey(Buffer.from(opts.secret));
const stats = { connections: 0, opened: 0, publishes: 0, dropped: 0, rejected: 0 };
let nextId = 1;

// The claims of a valid HS256 token, or null.
function verify(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  } catch (_) {
    return null;
  }
  if (header.alg !== 'HS256' || typeof claims.sub !== 'string') return null;
  const mac = crypto.createHmac('sha256', key).update(parts[0] + '.' + parts[1]).digest();
  const sig = Buffer.from(parts[2], 'base64url');
  if (sig.length !== mac.length || !crypto.timingSafeEqual(sig, mac)) return null;
  if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) return null;
  return claims;
}

function tokenOf(req) {
  const auth = req.getHeader('authorization');
  if (auth.startsWith('Bearer ')) return auth.slice(7);
  for (const kv of req.getQuery().split('&')) {
    if (kv.startsWith('token=')) return decodeURIComponent(kv.slice(6));
  }
  return '';
}

const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 << 10,
  idleTimeout: opts.idleTimeout,
  sendPingsAutomatically: true,
  maxBackpressure: opts.maxBackpressure,
  closeOnBackpressureLimit: false,
  upgrade: (res, req, context) => {
    // Everything read from req is read now: it is gone once this handler returns.
    const claims = verify(tokenOf(req));
    const wsKey = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    if (!claims) {
      stats.rejected++;
      res.writeStatus('401 Unauthorized')
        .end('{"error":"unauthorized","message":"invalid token"}');
      return;
    }
    res.upgrade({ id: nextId++, user: claims.sub, exp: claims.exp }, wsKey, protocol,
      extensions, context);
  },
  open: (ws) => {
    stats.connections++;
    stats.opened++;
    const u = ws.getUserData();
    u.from = JSON.stringify(u.user);
    ws.send(`{"type":"welcome","conn":"${u.id.toString(16)}","user":${u.from},` +
      `"instance":"uws","shard":0,"ping_interval_ms":${(opts.idleTimeout - 16) * 1000},` +
      `"expires_at":${u.exp}}`);
  },
  message: (ws, message) => {
    let req;
    try {
      req = JSON.parse(Buffer.from(message).toString());
    } catch (_) {
      return;
    }
    if (req === null || typeof req !== 'object') return;
    const ch = typeof req.channel === 'string' ? req.channel : null;
    const id = Number.isInteger(req.id) ? req.id : null;
    if (req.type === 'subscribe' && ch !== null) {
      ws.subscribe(ch);
      ws.send(`{"id":${id || 0},"type":"subscribed","channel":${JSON.stringify(ch)}}`);
    } else if (req.type === 'publish' && ch !== null) {
      stats.publishes++;
      const data = req.data === undefined ? 'null' : JSON.stringify(req.data);
      const from = ws.getUserData().from;
      app.publish(ch, `{"type":"message","channel":${JSON.stringify(ch)},"data":${data},"from":${from}}`);
      if (id !== null) ws.send(`{"id":${id},"type":"ack"}`);
    } else if (req.type === 'ping') {
      ws.send(`{"id":${id || 0},"type":"pong"}`);
    }
  },
  dropped: () => {
    stats.dropped++;
  },
  close: () => {
    stats.connections--;
  },
});
app.get('/stats', (res) => {
  res.writeHeader('content-type', 'application/json').end(JSON.stringify(stats));
});

const at = opts.listen.lastIndexOf(':');
const host = opts.listen.slice(0, at);
app.listen(host, Number(opts.listen.slice(at + 1)), (socket) => {
  if (!socket) {
    console.error(`uws-hub: cannot listen on ${opts.listen}`);
    process.exit(1);
  }
  console.log(`uws-hub ready addr=${host}:${uWS.us_socket_local_port(socket)}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    console.error(`uws-hub stats ${JSON.stringify(stats)}`);
    process.exit(0);
  });
}
