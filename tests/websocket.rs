//! WebSocket correctness on `/ws`: masking, fragmentation, control frames, limits, UTF-8,
//! malformed requests. Frames are written by hand where a real client would refuse to.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use ringhub::config::Driver;
use serde_json::{json, Value};

both_drivers!(
    unmasked_frame_closes_1002,
    fragments_with_interleaved_ping,
    ping_pong_and_close_handshake,
    oversized_message_closes_1009,
    invalid_utf8_closes_1007,
    malformed_requests_get_errors_then_1008,
    reserved_bits_and_bad_control_frames_close_1002,
);

/// A raw WebSocket connection, authenticated, speaking frames built by hand.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

fn raw_connect(addr: std::net::SocketAddr, user: &str) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let head = format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        token(user)
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Raw { s, buf: Vec::new() };
    while !raw.buf.windows(4).any(|w| w == b"\r\n\r\n") {
        raw.fill();
    }
    let end = raw.buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(raw.buf.starts_with(b"HTTP/1.1 101"));
    raw.buf.drain(..end);
    let (op, payload) = raw.frame();
    assert_eq!(op, 1);
    assert_eq!(
        serde_json::from_slice::<Value>(&payload).unwrap()["type"],
        "welcome"
    );
    raw
}

impl Raw {
    fn fill(&mut self) -> usize {
        let mut b = [0u8; 65536];
        let n = self.s.read(&mut b).expect("read");
        self.buf.extend_from_slice(&b[..n]);
        n
    }

    /// The next server frame: opcode and payload (server frames are unmasked).
    fn frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 2 {
                let len0 = (self.buf[1] & 0x7f) as usize;
                let (len, at) = match len0 {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => (
                        u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    n if n < 126 => (n, 2),
                    _ => (usize::MAX, 0),
                };
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are never masked");
                if len != usize::MAX && self.buf.len() >= at + len {
                    let op = self.buf[0] & 0x0f;
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return (op, payload);
                }
            }
            assert!(self.fill() > 0, "connection closed before a frame");
        }
    }

    fn json(&mut self) -> Value {
        loop {
            let (op, p) = self.frame();
            if op == 1 {
                return serde_json::from_slice(&p).unwrap();
            }
        }
    }

    /// Reads to the close frame; returns its code.
    fn close_code(&mut self) -> u16 {
        loop {
            let (op, p) = self.frame();
            if op == 8 {
                return u16::from_be_bytes([p[0], p[1]]);
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }
}

fn frame(fin: bool, op: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask = masked.then_some([0xa1, 0xb2, 0xc3, 0xd4]);
    ringhub::ws::frame::client_frame(fin, op, payload, mask)
}

fn unmasked_frame_closes_1002(driver: Driver) {
    let hub = start_default(driver);
    let mut r = raw_connect(hub.addr, "unmasked");
    r.send(&frame(true, 1, br#"{"type":"ping"}"#, false));
    assert_eq!(r.close_code(), 1002);
}

fn fragments_with_interleaved_ping(driver: Driver) {
    let hub = start_default(driver);
    let mut r = raw_connect(hub.addr, "fragments");
    let msg = br#"{"id":12,"type":"subscribe","channel":"chat:frag"}"#;
    let mut bytes = frame(false, 1, &msg[..10], true);
    bytes.extend(frame(true, 9, b"hi", true));
    bytes.extend(frame(false, 0, &msg[10..30], true));
    bytes.extend(frame(true, 0, &msg[30..], true));
    // sent one byte at a time: the hub must reassemble across reads
    for b in bytes {
        r.send(&[b]);
    }
    assert_eq!(
        r.frame(),
        (0xA, b"hi".to_vec()),
        "pong echoes the ping payload, before the reply"
    );
    assert_eq!(
        r.json(),
        json!({"id": 12, "type": "subscribed", "channel": "chat:frag"})
    );
}

fn ping_pong_and_close_handshake(driver: Driver) {
    let hub = start_default(driver);
    let mut r = raw_connect(hub.addr, "closer");
    r.send(&frame(true, 9, b"payload", true));
    assert_eq!(r.frame(), (0xA, b"payload".to_vec()));
    r.send(&frame(true, 1, br#"{"id":3,"type":"ping"}"#, true));
    assert_eq!(r.json(), json!({"id": 3, "type": "pong"}));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend(b"bye");
    r.send(&frame(true, 8, &close, true));
    assert_eq!(r.close_code(), 1000, "the hub answers with the same code");
    // then the hub closes TCP
    let mut rest = [0u8; 16];
    assert_eq!(r.s.read(&mut rest).unwrap(), 0);
    assert!(eventually(|| hub
        .hub()
        .shared()
        .connections
        .load(std::sync::atomic::Ordering::Acquire)
        == 0));
}

fn oversized_message_closes_1009(driver: Driver) {
    let mut config = config(driver);
    config.max_message_size = 1024;
    let hub = start(config);
    let mut r = raw_connect(hub.addr, "big-frame");
    r.send(&frame(true, 1, &vec![b' '; 1025], true));
    assert_eq!(r.close_code(), 1009);
    // in fragments, each under the limit, together over it
    let mut r = raw_connect(hub.addr, "big-message");
    r.send(&frame(false, 1, &[b' '; 600], true));
    r.send(&frame(true, 0, &[b' '; 600], true));
    assert_eq!(r.close_code(), 1009);
    // exactly at the limit is fine
    let mut r = raw_connect(hub.addr, "at-limit");
    let mut msg = br#"{"id":1,"type":"ping"}"#.to_vec();
    msg.resize(1024, b' ');
    r.send(&frame(true, 1, &msg, true));
    assert_eq!(r.json()["type"], "pong");
}

fn invalid_utf8_closes_1007(driver: Driver) {
    let hub = start_default(driver);
    let mut r = raw_connect(hub.addr, "utf8");
    r.send(&frame(true, 1, b"{\"type\":\"\xff\"}", true));
    assert_eq!(r.close_code(), 1007);
}

fn malformed_requests_get_errors_then_1008(driver: Driver) {
    let hub = start_default(driver);
    let (mut c, _) = connect(hub.addr, "sloppy");
    c.send_text("{not json");
    assert_eq!(c.recv()["code"], "bad_request");
    c.send_text(r#"{"id":5,"type":"no-such-type"}"#);
    let e = c.recv();
    assert_eq!(
        (e["id"].as_u64(), e["code"].as_str()),
        (Some(5), Some("bad_request"))
    );
    c.ws.send(tungstenite::Message::binary(vec![1, 2, 3]))
        .unwrap();
    assert_eq!(c.recv()["code"], "bad_request");
    // still connected and working
    assert_eq!(c.request(json!({"type": "ping"}), 6)["type"], "pong");
    // but a stream of garbage ends with 1008
    for _ in 0..ringhub::shard::MAX_MALFORMED {
        c.send_text("garbage");
    }
    let (frames, code) = c.recv_until_close();
    assert_eq!(code, 1008);
    assert!(frames.iter().all(|f| f["code"] == "bad_request"));
}

fn reserved_bits_and_bad_control_frames_close_1002(driver: Driver) {
    let hub = start_default(driver);
    let mut r = raw_connect(hub.addr, "rsv");
    let mut f = frame(true, 1, b"{}", true);
    f[0] |= 0x40;
    r.send(&f);
    assert_eq!(r.close_code(), 1002);
    let mut r = raw_connect(hub.addr, "long-ping");
    r.send(&frame(true, 9, &[0u8; 126], true));
    assert_eq!(r.close_code(), 1002);
    let mut r = raw_connect(hub.addr, "stray-continuation");
    r.send(&frame(true, 0, b"x", true));
    assert_eq!(r.close_code(), 1002);
    let mut r = raw_connect(hub.addr, "bad-close-code");
    r.send(&frame(true, 8, &1005u16.to_be_bytes(), true));
    assert_eq!(r.close_code(), 1002);
    // the hub is fine
    let (mut c, _) = connect(hub.addr, "fine");
    assert_eq!(c.request(json!({"type": "ping"}), 1)["type"], "pong");
}
