//! permessage-deflate (RFC 7692) on `/ws`: what the hub answers to each offer, compressed
//! publications above `compression_threshold` and plain ones below it, compressed client
//! messages, a decompression bomb, and Python `websockets` (a client ringhub did not write,
//! which negotiates the extension by default).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::lean::{connect_with, source_ip, Conn, Frame};
use common::*;
use ringhub::config::Driver;
use ringhub::ws::frame::client_frame;
use serde_json::{json, Value};

both_drivers!(
    negotiation_answers,
    publications_compressed_above_the_threshold,
    compressed_messages_from_clients,
    a_decompression_bomb_closes_1009_alone,
    python_websockets,
);

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

fn deflate_config(driver: Driver) -> ringhub::Config {
    let mut c = config(driver);
    c.compression = true;
    c.compression_threshold = 200;
    c.max_message_size = 4096;
    c
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Connects `user` with `offer` in `Sec-WebSocket-Extensions` (none when empty); returns
/// the connection and the hub's answer in that header.
async fn connect_offering(addr: SocketAddr, user: &str, offer: &str) -> (Conn, Option<String>) {
    let headers = match offer {
        "" => String::new(),
        o => format!("Sec-WebSocket-Extensions: {o}\r\n"),
    };
    let (conn, head) = connect_with(addr, source_ip(0), &token(user), &headers, WAIT)
        .await
        .expect("upgrade");
    let answer = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-extensions")
            .then(|| value.trim().to_string())
    });
    (conn, answer)
}

/// Raw DEFLATE as a client sends it: sync-flushed, `00 00 ff ff` stripped.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    out.truncate(out.len() - 4);
    out
}

async fn request(conn: &mut Conn, mut v: Value, id: u64) -> Value {
    v["id"] = json!(id);
    let bytes = client_frame(true, 0x1, v.to_string().as_bytes(), MASK);
    conn.send(&bytes).await.unwrap();
    loop {
        let reply = next(conn).await.json();
        if reply["id"] == json!(id) {
            return reply;
        }
    }
}

async fn next(conn: &mut Conn) -> Frame {
    tokio::time::timeout(WAIT, conn.frame())
        .await
        .expect("a frame in time")
        .expect("a frame")
}

async fn subscribe(conn: &mut Conn, channel: &str) {
    let r = request(conn, json!({"type": "subscribe", "channel": channel}), 1).await;
    assert_eq!(r["type"], "subscribed", "{r}");
}

/// A ~1 KB table state.
fn table_state() -> Value {
    let seats: Vec<Value> = (0..12)
        .map(|i| json!({"seat": i, "player": format!("player-{i:04}"), "stack": 10_000 - i * 113, "status": "active"}))
        .collect();
    json!({"table": "t-7", "round": 17, "seats": seats})
}

fn negotiation_answers(driver: Driver) {
    let hub = start(deflate_config(driver));
    let lean_answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let cases: &[(&str, Option<&str>)] = &[
        ("", None),
        ("permessage-deflate", Some(lean_answer)),
        ("permessage-deflate; client_max_window_bits", Some(lean_answer)),
        ("permessage-deflate; client_max_window_bits=10", Some(lean_answer)),
        ("permessage-deflate; server_no_context_takeover", Some(lean_answer)),
        ("permessage-deflate; client_no_context_takeover", Some(lean_answer)),
        (
            "permessage-deflate; server_max_window_bits=10",
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"),
        ),
        // The hub cannot compress with a 256-byte window: that offer is declined, the next
        // one taken.
        ("permessage-deflate; server_max_window_bits=8", None),
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate",
            Some(lean_answer),
        ),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; bogus", None),
        ("x-webkit-deflate-frame", None),
    ];
    block_on(async {
        for (offer, want) in cases {
            let (_, answer) = connect_offering(hub.addr, "neg", offer).await;
            assert_eq!(answer.as_deref(), *want, "offer {offer:?}");
        }
    });
    // Off: no answer to any offer. With client context allowed: the client keeps its own.
    let off = start(config(driver));
    let mut c = deflate_config(driver);
    c.compression_client_context = true;
    let context = start(c);
    block_on(async {
        let (_, answer) = connect_offering(off.addr, "neg", "permessage-deflate").await;
        assert_eq!(answer, None);
        let (_, answer) = connect_offering(context.addr, "neg", "permessage-deflate").await;
        assert_eq!(
            answer.as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    });
}

fn publications_compressed_above_the_threshold(driver: Driver) {
    let hub = start(deflate_config(driver));
    block_on(async {
        let (mut wide, _) = connect_offering(hub.addr, "wide", "permessage-deflate").await;
        let (mut narrow, answer) = connect_offering(
            hub.addr,
            "narrow",
            "permessage-deflate; server_max_window_bits=9",
        )
        .await;
        assert!(answer.unwrap().ends_with("server_max_window_bits=9"));
        let (mut plain, _) = connect_offering(hub.addr, "plain", "").await;
        for c in [&mut wide, &mut narrow, &mut plain] {
            subscribe(c, "table:1").await;
        }
        let state = table_state();
        let r = hub.api().post(
            "/api/publish",
            &json!({"channel": "table:1", "data": state}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let plain_frame = next(&mut plain).await;
        assert!(!plain_frame.rsv1);
        assert_eq!(plain_frame.json()["data"], state);
        for c in [&mut wide, &mut narrow] {
            let f = next(c).await;
            assert!(f.rsv1, "a 1 KB publication goes out compressed");
            assert!(f.payload.len() * 2 < plain_frame.payload.len());
            assert_eq!(
                f.inflated(),
                plain_frame.payload,
                "the same frame, inflated"
            );
        }
        // A 60-byte move stays under the threshold: plain for everyone.
        let mv = json!({"seat": 3, "action": "raise", "amount": 400});
        hub.api()
            .post("/api/publish", &json!({"channel": "table:1", "data": mv}));
        for c in [&mut wide, &mut narrow, &mut plain] {
            let f = next(c).await;
            assert!(!f.rsv1, "under compression_threshold: RSV1 clear");
            assert_eq!(f.json()["data"], mv);
        }
    });
}

fn compressed_messages_from_clients(driver: Driver) {
    let hub = start(deflate_config(driver));
    block_on(async {
        let (mut publisher, _) = connect_offering(hub.addr, "deflater", "permessage-deflate").await;
        let (mut plain, _) = connect_offering(hub.addr, "reader", "").await;
        subscribe(&mut plain, "table:2").await;
        let state = table_state();
        let publish = json!({"type": "publish", "channel": "table:2", "data": state, "id": 9});
        let z = deflate(publish.to_string().as_bytes());
        // Whole, then in two fragments (RSV1 on the first only).
        publisher
            .send(&client_frame(true, 0x41, &z, MASK))
            .await
            .unwrap();
        let (a, b) = z.split_at(z.len() / 2);
        let mut two = client_frame(false, 0x41, a, MASK);
        two.extend(client_frame(true, 0x0, b, MASK));
        publisher.send(&two).await.unwrap();
        for _ in 0..2 {
            let m = next(&mut plain).await.json();
            assert_eq!(m["type"], "message", "{m}");
            assert_eq!(m["data"], state);
            assert_eq!(m["from"], "deflater");
        }
        // RSV1 from a client that did not negotiate the extension: 1002.
        plain
            .send(&client_frame(true, 0x41, &z, MASK))
            .await
            .unwrap();
        assert_eq!(close_code(&mut plain).await, 1002);
    });
}

/// Reads frames up to the hub's close frame and returns its code.
async fn close_code(conn: &mut Conn) -> u16 {
    loop {
        let f = next(conn).await;
        if f.opcode == 0x8 {
            return u16::from_be_bytes([f.payload[0], f.payload[1]]);
        }
    }
}

fn a_decompression_bomb_closes_1009_alone(driver: Driver) {
    let hub = start(deflate_config(driver));
    block_on(async {
        let (mut bomber, _) = connect_offering(hub.addr, "bomber", "permessage-deflate").await;
        let (mut other, _) = connect_offering(hub.addr, "other", "permessage-deflate").await;
        subscribe(&mut other, "table:3").await;
        // 1 MiB of spaces inside a JSON string: about 1 KB on the wire, far over the 4 KiB
        // max_message_size once inflated.
        let mut bomb = br#"{"type":"publish","channel":"table:3","data":""#.to_vec();
        bomb.resize(1 << 20, b' ');
        bomb.extend(br#""}"#);
        let z = deflate(&bomb);
        assert!(z.len() < 2048, "{}", z.len());
        bomber
            .send(&client_frame(true, 0x41, &z, MASK))
            .await
            .unwrap();
        assert_eq!(close_code(&mut bomber).await, 1009);
        // Nothing else was harmed: the other connection still gets publications.
        let state = table_state();
        let r = hub.api().post(
            "/api/publish",
            &json!({"channel": "table:3", "data": state}),
        );
        assert_eq!(r.status, 200);
        let f = next(&mut other).await;
        assert_eq!(f.json()["data"], state);
        assert_eq!(f.json()["type"], "message");
    });
}

/// The interpreter with `websockets`: `$TEST_PYTHON`, else `python3`. None (the test
/// skips, saying so) when it lacks the package, unless `TEST_REQUIRE_PYTHON_WEBSOCKETS=1`
/// (scripts/test.sh sets both).
fn python() -> Option<String> {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if std::env::var("TEST_REQUIRE_PYTHON_WEBSOCKETS").as_deref() == Ok("1") {
        panic!("{python} cannot import websockets (pip install websockets, or set TEST_PYTHON)");
    }
    eprintln!("skipping: {python} cannot import websockets (pip install websockets)");
    None
}

fn python_websockets(driver: Driver) {
    let Some(python) = python() else { return };
    let hub = start(deflate_config(driver));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deflate_client.py");
    let url = format!("ws://{}/ws?token={}", hub.addr, token("py"));
    let mut child = Command::new(python)
        .args([script, &url, "table:py"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut line = || -> Value {
        let l = lines.next().expect("a line from the client").unwrap();
        serde_json::from_str(&l).expect("a JSON line")
    };
    let open = line();
    assert_eq!(open["extensions"], json!(["PerMessageDeflate"]), "{open}");
    assert!(open["header"]
        .as_str()
        .unwrap()
        .starts_with("permessage-deflate; server_no_context_takeover"));
    assert_eq!(line()["event"], "ready");
    block_on(async {
        let (mut reader, _) = connect_offering(hub.addr, "reader", "permessage-deflate").await;
        subscribe(&mut reader, "table:py").await;
        let state = table_state();
        let r = hub.api().post(
            "/api/publish",
            &json!({"channel": "table:py", "data": state}),
        );
        assert_eq!(r.status, 200);
        assert!(next(&mut reader).await.rsv1, "the hub compresses it");
        let got = line();
        assert_eq!(got["event"], "message");
        assert_eq!(got["data"], state, "Python inflated the hub's frame");
        // Python publishes, compressed (websockets compresses every message it may).
        let f = next(&mut reader).await;
        let m = f.json();
        assert_eq!(m["from"], "py", "{m}");
        assert_eq!(m["data"]["from_python"], true);
        assert_eq!(m["data"]["seats"].as_array().unwrap().len(), 16);
    });
    let ack = line();
    assert_eq!(ack["reply"]["type"], "ack", "{ack}");
    assert!(child.wait().unwrap().success());
}
