//! baseline-hub: the conventional Rust WebSocket hub the benchmarks compare ringhub with,
//! written as most teams would, and tuned as a competent team would.
//!
//! tokio's multi-thread runtime, tokio-tungstenite, a shared channel map (`DashMap`), one
//! task per connection for reading and one for writing, a bounded queue per connection.
//! Tuning: small read buffers (4 KiB instead of 128 KiB), a large listen backlog, TCP_NODELAY,
//! frames encoded once and shared (`Utf8Bytes` is reference counted), and no flush per
//! message: the writer feeds everything queued, then flushes once.
//!
//! It speaks the subset of docs/protocol.md the benchmarks use: token in the `token` query
//! parameter or `Authorization: Bearer`, `welcome`, `subscribe`/`subscribed`,
//! `publish`/`message`/`ack`, `ping`/`pong`. A consumer whose queue is full is closed
//! with 4009. Heartbeats as docs/protocol.md §4 has them, written the usual way: a
//! `tokio::time::Interval` per connection, raced against the reader, sends a ping frame
//! every `--ping-interval`, and a connection silent for that plus `--pong-timeout` is
//! closed with 1011.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dashmap::DashMap;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Parser)]
#[command(
    name = "baseline-hub",
    about = "A conventional tokio + tokio-tungstenite hub, for comparisons"
)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// HS256 secret of the tokens.
    #[arg(long, env = "RINGHUB_JWT_SECRET")]
    secret: String,
    /// Worker threads (default: the CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Frames queued per connection before it counts as a slow consumer.
    #[arg(long, default_value_t = 4096)]
    queue: usize,
    /// How often every connection is pinged.
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    ping_interval: Duration,
    /// How long past a ping a connection may stay silent.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pong_timeout: Duration,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

#[derive(Deserialize)]
struct Req<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    channel: Option<&'a str>,
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
}

type Subscribers = HashMap<u64, mpsc::Sender<Message>>;

struct Hub {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    channels: DashMap<String, Subscribers>,
    next_id: AtomicU64,
    queue: usize,
    ping_interval: Duration,
    pong_timeout: Duration,
}

fn main() {
    let cli = Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build().expect("runtime");
    let hub = Arc::new(Hub {
        key: jsonwebtoken::DecodingKey::from_secret(cli.secret.as_bytes()),
        validation: jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
        channels: DashMap::new(),
        next_id: AtomicU64::new(1),
        queue: cli.queue,
        ping_interval: cli.ping_interval,
        pong_timeout: cli.pong_timeout,
    });
    rt.block_on(async move {
        let socket = if cli.listen.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind(cli.listen).expect("bind");
        let listener: TcpListener = socket.listen(65_535).expect("listen");
        println!(
            "baseline-hub ready addr={}",
            listener.local_addr().expect("addr")
        );
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(hub.clone(), stream));
        }
    });
}

fn token_of(req: &Request) -> Option<String> {
    if let Some(v) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.to_string());
        }
    }
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token=").map(String::from))
}

async fn serve(hub: Arc<Hub>, stream: TcpStream) {
    let mut claims = None;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 10));
    // The callback's type is tungstenite's: its error is a whole HTTP response.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let token = token_of(req).unwrap_or_default();
        match jsonwebtoken::decode::<Claims>(&token, &hub.key, &hub.validation) {
            Ok(data) => {
                claims = Some(data.claims);
                Ok(resp)
            }
            Err(_) => {
                let mut r = ErrorResponse::new(Some(
                    r#"{"error":"unauthorized","message":"invalid token"}"#.into(),
                ));
                *r.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::UNAUTHORIZED;
                Err(r)
            }
        }
    };
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let Some(claims) = claims else { return };
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(hub.queue);
    let welcome = format!(
        r#"{{"type":"welcome","conn":"{id:x}","user":{},"instance":"baseline","shard":0,"ping_interval_ms":25000,"expires_at":{}}}"#,
        serde_json::to_string(&claims.sub).expect("a string"),
        claims.exp
    );
    let _ = tx.try_send(Message::text(welcome));
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let closing = matches!(first, Message::Close(_));
            if sink.feed(first).await.is_err() {
                return;
            }
            // Everything else already queued goes out with the same flush.
            while let Ok(more) = rx.try_recv() {
                if sink.feed(more).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() || closing {
                return;
            }
        }
    });
    let mut subscribed: Vec<String> = Vec::new();
    let mut heartbeat =
        tokio::time::interval_at(Instant::now() + hub.ping_interval, hub.ping_interval);
    let mut last_seen = Instant::now();
    loop {
        let msg = tokio::select! {
            msg = source.next() => match msg {
                Some(Ok(msg)) => msg,
                _ => break,
            },
            _ = heartbeat.tick() => {
                if last_seen.elapsed() >= hub.ping_interval + hub.pong_timeout {
                    let close = CloseFrame { code: CloseCode::from(1011), reason: "ping timeout".into() };
                    let _ = tx.try_send(Message::Close(Some(close)));
                    break;
                }
                let _ = tx.try_send(Message::Ping(Default::default()));
                continue;
            }
        };
        last_seen = Instant::now();
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(req) = serde_json::from_str::<Req>(text.as_str()) else {
            continue;
        };
        match (req.kind, req.channel) {
            ("subscribe", Some(ch)) => {
                hub.channels
                    .entry(ch.to_string())
                    .or_default()
                    .insert(id, tx.clone());
                subscribed.push(ch.to_string());
                let reply = format!(
                    r#"{{"id":{},"type":"subscribed","channel":{}}}"#,
                    req.id.unwrap_or(0),
                    serde_json::to_string(ch).expect("a string")
                );
                let _ = tx.send(Message::text(reply)).await;
            }
            ("publish", Some(ch)) => {
                let data = req.data.map_or("null", |d| d.get());
                let frame = Message::Text(Utf8Bytes::from(format!(
                    r#"{{"type":"message","channel":{},"data":{data},"from":{}}}"#,
                    serde_json::to_string(ch).expect("a string"),
                    serde_json::to_string(&claims.sub).expect("a string")
                )));
                let mut slow = Vec::new();
                if let Some(subs) = hub.channels.get(ch) {
                    for (sid, sub) in subs.iter() {
                        if sub.try_send(frame.clone()).is_err() {
                            slow.push((*sid, sub.clone()));
                        }
                    }
                }
                for (sid, sub) in slow {
                    if let Some(mut subs) = hub.channels.get_mut(ch) {
                        subs.remove(&sid);
                    }
                    let close = CloseFrame {
                        code: CloseCode::from(4009),
                        reason: "slow consumer".into(),
                    };
                    tokio::spawn(async move {
                        let _ = sub.send(Message::Close(Some(close))).await;
                    });
                }
                if let Some(rid) = req.id {
                    let _ = tx
                        .send(Message::text(format!(r#"{{"id":{rid},"type":"ack"}}"#)))
                        .await;
                }
            }
            ("ping", _) => {
                let _ = tx
                    .send(Message::text(format!(
                        r#"{{"id":{},"type":"pong"}}"#,
                        req.id.unwrap_or(0)
                    )))
                    .await;
            }
            _ => {}
        }
    }
    for ch in subscribed {
        if let Some(mut subs) = hub.channels.get_mut(&ch) {
            subs.remove(&id);
        }
        hub.channels.remove_if(&ch, |_, s| s.is_empty());
    }
    drop(tx);
    let _ = writer.await;
}
