//! Test helpers: start a real hub in-process on port 0 (4 shards), talk to it with a real
//! WebSocket client (tungstenite) over real sockets.
#![allow(dead_code)]

pub mod admin;
pub mod backend;
pub mod cluster;
pub mod deltas;
pub mod history;
pub mod lean;
pub mod outage;
pub mod pki;
pub mod process;
pub mod proto;
pub mod redis;
pub mod redis_cluster;
pub mod stream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use std::time::{Duration, Instant};
pub use stream::Tcp;

use ringhub::auth::{mint, MintOptions};
use ringhub::config::{Driver, Namespace};
use ringhub::{Config, Hub};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

pub const SECRET: &str = "integration-test-secret";
pub const WAIT: Duration = Duration::from_secs(5);

/// Generates one test per driver: `name::io_uring` and `name::epoll`.
#[macro_export]
macro_rules! both_drivers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn io_uring() {
                super::$name(ringhub::config::Driver::IoUring)
            }
            #[test]
            fn epoll() {
                super::$name(ringhub::config::Driver::Epoll)
            }
        }
    )*};
}

pub struct TestHub {
    hub: Option<Hub>,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
}

impl TestHub {
    /// A keep-alive client of the admin port, with the test API key.
    pub fn api(&self) -> admin::AdminClient {
        admin::AdminClient::new(self.admin)
    }

    pub fn hub(&self) -> &Hub {
        self.hub.as_ref().unwrap()
    }

    /// Drains and stops, returning the connections left open.
    pub fn shutdown(mut self) -> usize {
        self.hub.take().unwrap().shutdown()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.shutdown();
        }
    }
}

/// A config for tests: loopback, port 0, 4 shards, a known secret, short timeouts.
pub fn config(driver: Driver) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        shards: 4,
        driver,
        jwt_secret: SECRET.into(),
        drain_timeout: Duration::from_secs(3),
        close_timeout: Duration::from_millis(500),
        reconnect_jitter: Duration::from_millis(100),
        // Floods are part of several tests; the rate-limit tests set their own limits.
        messages_per_second: 1_000_000,
        burst: 1_000_000,
        connects_per_second_per_ip: 1_000_000,
        api_keys: vec![admin::digest(admin::API_KEY)],
        ..Config::default()
    };
    let public = Namespace {
        public: true,
        client_publish: true,
        ..Namespace::default()
    };
    c.namespaces.insert("chat".into(), public);
    let table = Namespace {
        client_publish: true,
        ..Namespace::default()
    };
    c.namespaces.insert("table".into(), table);
    let room = Namespace {
        public: true,
        presence: true,
        join_leave: true,
        ..Namespace::default()
    };
    c.namespaces.insert("room".into(), room);
    c
}

pub fn start(config: Config) -> TestHub {
    let hub = Hub::start(config).expect("hub starts");
    let addr = hub.local_addr();
    let admin = hub.admin_addr();
    TestHub {
        hub: Some(hub),
        addr,
        admin,
    }
}

pub fn start_default(driver: Driver) -> TestHub {
    start(config(driver))
}

/// A token for `user` that may subscribe to and publish on `table:*` and `chat:*`.
pub fn token(user: &str) -> String {
    token_with(user, &["table:*", "chat:*"], &["table:*", "chat:*"], 3600)
}

/// A token whose `info` claim is `info`.
pub fn token_info(user: &str, info: Value) -> String {
    mint(
        SECRET.as_bytes(),
        &MintOptions {
            user: user.into(),
            ttl: 3600,
            info: Some(info),
            ..MintOptions::default()
        },
    )
}

pub fn token_with(user: &str, channels: &[&str], publish: &[&str], ttl: u64) -> String {
    mint(
        SECRET.as_bytes(),
        &MintOptions {
            user: user.into(),
            ttl,
            channels: channels.iter().map(|s| s.to_string()).collect(),
            publish: publish.iter().map(|s| s.to_string()).collect(),
            ..MintOptions::default()
        },
    )
}

/// A WebSocket client over TCP, or over another stream (TLS: `pki::TlsStream`).
pub struct Client<S = Tcp> {
    pub ws: WebSocket<S>,
}

/// Opens a WebSocket to `path` (which may carry a query), with optional extra headers.
pub fn open(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Client, tungstenite::Error> {
    handshake(tcp(addr), addr, path, headers)
}

/// A TCP connection to `addr` with the tests' read timeout, reads and writes retried on `EINTR`.
pub fn tcp(addr: SocketAddr) -> Tcp {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    Tcp(stream)
}

/// The WebSocket upgrade to `path` over `stream`, already connected to `addr`.
pub fn handshake<S: Read + Write>(
    stream: S,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Client<S>, tungstenite::Error> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    match tungstenite::client::client_with_config(req, stream, Some(config)) {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            panic!("blocking handshake interrupted")
        }
    }
}

/// The HTTP status an upgrade is refused with (panics if it succeeds).
pub fn refused(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> u16 {
    match open(addr, path, headers) {
        Ok(_) => panic!("the upgrade to {path} succeeded"),
        Err(tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

/// Connects `user` with a header token and returns the client and its welcome.
pub fn connect(addr: SocketAddr, user: &str) -> (Client, Value) {
    connect_token(addr, &token(user))
}

pub fn connect_token(addr: SocketAddr, token: &str) -> (Client, Value) {
    let auth = format!("Bearer {token}");
    let mut c = open(addr, "/ws", &[("authorization", &auth)]).expect("upgrade");
    let welcome = c.recv();
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (c, welcome)
}

impl<S: Read + Write> Client<S> {
    pub fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).expect("send");
    }

    pub fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s.to_string())).expect("send");
    }

    /// The next JSON frame (pings are answered by tungstenite and skipped).
    pub fn recv(&mut self) -> Value {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str()).expect("JSON frame")
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(other) => panic!("expected a text frame, got {other:?}"),
                Err(e) => panic!("expected a text frame, got error {e}"),
            }
        }
    }

    /// Sends a request with `id` and returns the reply with that id.
    pub fn request(&mut self, mut v: Value, id: u64) -> Value {
        v["id"] = json!(id);
        self.send(v);
        loop {
            let r = self.recv();
            if r["id"] == json!(id) {
                return r;
            }
        }
    }

    pub fn subscribe(&mut self, channel: &str) {
        let r = self.request(json!({"type": "subscribe", "channel": channel}), 900_001);
        assert_eq!(r["type"], "subscribed", "{r}");
    }

    /// Unsubscribes without waiting for the reply (others' frames may come first).
    pub fn unsubscribe_quietly(&mut self, channel: &str) {
        self.send(json!({"type": "unsubscribe", "channel": channel}));
    }

    pub fn recv_close(&mut self) -> (u16, String) {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed) => return (1006, "closed".into()),
                Err(e) => panic!("expected a close frame, got error {e}"),
            }
        }
    }

    /// Reads frames until a close arrives, returning the JSON frames seen before it.
    pub fn recv_until_close(&mut self) -> (Vec<Value>, u16) {
        let mut frames = Vec::new();
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => frames.push(serde_json::from_str(t.as_str()).unwrap()),
                Ok(Message::Close(f)) => return (frames, f.map_or(1005, |f| u16::from(f.code))),
                Ok(_) => {}
                Err(e) => panic!("expected a close frame, got error {e}"),
            }
        }
    }

    pub fn close(mut self) {
        let _ = self.ws.close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
}

/// What needs the socket's read timeout.
impl Client<Tcp> {
    /// Like `request`, waiting up to `d` for the reply instead of `WAIT`.
    pub fn request_within(&mut self, v: Value, id: u64, d: Duration) -> Value {
        self.ws.get_ref().set_read_timeout(Some(d)).unwrap();
        let r = self.request(v, id);
        self.ws.get_ref().set_read_timeout(Some(WAIT)).unwrap();
        r
    }

    /// Every JSON frame that arrives within `d`.
    pub fn frames_for(&mut self, d: Duration) -> Vec<Value> {
        let deadline = Instant::now() + d;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.ws.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.ws.read() {
                Ok(Message::Text(t)) => out.push(serde_json::from_str(t.as_str()).unwrap()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.ws.get_ref().set_read_timeout(Some(WAIT)).unwrap();
        out
    }

    /// Asserts that no data frame arrives within `d` (pings are answered meanwhile).
    pub fn expect_silence(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.ws.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.ws.read() {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                other => panic!("expected silence, got {other:?}"),
            }
        }
        self.ws.get_ref().set_read_timeout(Some(WAIT)).unwrap();
    }
}

/// Sends raw bytes on a fresh TCP connection and returns everything the hub answers until
/// it closes (or the timeout).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "hub neither answered nor closed: {e} (got {:?})",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    out
}

/// A masked text frame, as a client sends it.
pub fn masked_text(s: &str) -> Vec<u8> {
    ringhub::ws::frame::client_frame(true, 0x1, s.as_bytes(), Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// Status code and JSON body of a raw HTTP answer.
pub fn http_status(answer: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    http_status(&raw_exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    ))
}

/// Polls `f` until it holds or `WAIT` passes.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}
