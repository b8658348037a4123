//! A connection's life in time: heartbeats, token expiry and refresh, per-user limits,
//! and the drain.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringhub::config::Driver;
use serde_json::json;

both_drivers!(
    silent_client_is_closed_answering_client_stays,
    token_expiry_and_refresh,
    per_user_connection_limit_closes_4003,
    drain_sends_reconnect_then_1001,
);

fn silent_client_is_closed_answering_client_stays(driver: Driver) {
    use std::io::{Read, Write};
    let mut config = config(driver);
    config.ping_interval = Duration::from_millis(300);
    config.pong_timeout = Duration::from_millis(200);
    let hub = start(config);
    // tungstenite answers pings as it reads
    let (mut alive, w) = connect(hub.addr, "alive");
    assert_eq!(w["ping_interval_ms"], 300);
    // twice the 500 ms a silent client is given, the time the raw one below is closed in
    let alive = std::thread::spawn(move || {
        alive.expect_silence(Duration::from_millis(1000));
        alive
    });
    // a raw client that never answers anything
    let mut silent = std::net::TcpStream::connect(hub.addr).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let head = format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        token("silent")
    );
    silent.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // wait for the close frame 1011 "ping timeout"
    let needle = [&1011u16.to_be_bytes()[..], b"ping timeout"].concat();
    while !got.windows(needle.len()).any(|w| w == needle.as_slice()) {
        let n = silent
            .read(&mut buf)
            .expect("close frame before the read timeout");
        assert!(n > 0, "closed without a close frame");
        got.extend_from_slice(&buf[..n]);
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(490),
        "closed too early: {waited:?}"
    );
    assert!(
        got.windows(2).any(|w| w == [0x89, 0x00]),
        "was pinged first"
    );
    // the answering client, meanwhile, is still served
    let mut alive = alive.join().unwrap();
    assert_eq!(alive.request(json!({"type": "ping"}), 1)["type"], "pong");
}

fn token_expiry_and_refresh(driver: Driver) {
    let mut config = config(driver);
    config.refresh_window = Duration::from_secs(1);
    config.jwt_leeway = Duration::ZERO;
    let hub = start(config);
    // Tokens count in whole seconds: these expire 1 to 2 s from now, `expiring` comes 1 s
    // before. Both connections live through the same second, so the test waits it once.
    let (mut c, w) = connect_token(hub.addr, &token_with("short", &["chat:*"], &[], 2));
    let (mut renewer, rw) = connect_token(hub.addr, &token_with("renewer", &["chat:*"], &[], 2));
    let exp = w["expires_at"].as_u64().unwrap();
    let renewer_exp = rw["expires_at"].as_u64().unwrap();

    // refreshed in time: stays open past the first token's expiry
    assert_eq!(renewer.recv()["type"], "expiring");
    let r = renewer.request(
        json!({"type": "refresh", "token": token_with("renewer", &["chat:*"], &[], 60)}),
        7,
    );
    assert_eq!(r["type"], "refreshed", "{r}");
    assert!(r["expires_at"].as_u64().unwrap() > renewer_exp + 30);
    // another user's token is refused, and the connection is kept
    let r = renewer.request(
        json!({"type": "refresh", "token": token("someone-else")}),
        8,
    );
    assert_eq!(r["code"], "unauthorized");

    // not refreshed: `expiring`, then closed with 4001 at `exp`
    let e = c.recv();
    assert_eq!(e, json!({"type": "expiring", "expires_at": exp}));
    let (_, code) = c.recv_until_close();
    assert_eq!(code, 4001);

    // The first token's expiry timer fires at its `exp` (plus a wheel tick): nothing may
    // arrive until well after it, then the connection still answers.
    let past = Duration::from_secs(renewer_exp) + Duration::from_millis(300);
    let now = std::time::UNIX_EPOCH.elapsed().unwrap();
    renewer.expect_silence(past.saturating_sub(now).max(Duration::from_millis(10)));
    assert_eq!(renewer.request(json!({"type": "ping"}), 9)["type"], "pong");
}

fn per_user_connection_limit_closes_4003(driver: Driver) {
    let mut config = config(driver);
    config.max_connections_per_user = 2;
    let hub = start(config);
    let (mut a, _) = connect(hub.addr, "greedy");
    let (mut b, _) = connect(hub.addr, "greedy");
    let auth = format!("Bearer {}", token("greedy"));
    let mut third = open(hub.addr, "/ws", &[("authorization", &auth)]).unwrap();
    assert_eq!(third.recv_close().0, 4003);
    assert_eq!(a.request(json!({"type": "ping"}), 1)["type"], "pong");
    assert_eq!(b.request(json!({"type": "ping"}), 1)["type"], "pong");
    let (_, _) = connect(hub.addr, "someone-else");
}

fn drain_sends_reconnect_then_1001(driver: Driver) {
    let hub = start_default(driver);
    let mut clients: Vec<_> = (0..10)
        .map(|i| connect(hub.addr, &format!("drain-{i}")).0)
        .collect();
    hub.hub().begin_drain();
    for c in &mut clients {
        let (frames, code) = c.recv_until_close();
        assert_eq!(code, 1001);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0]["type"], "reconnect");
        assert!(
            frames[0]["after_ms"].as_u64().unwrap() <= 100,
            "jitter bounded by reconnect_jitter"
        );
    }
    // /ready is 503 and new upgrades are refused (the listener may already be gone)
    if let Ok(mut s) = std::net::TcpStream::connect(hub.addr) {
        use std::io::{Read, Write};
        s.set_read_timeout(Some(WAIT)).unwrap();
        let _ = s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        if !out.is_empty() {
            assert_eq!(http_status(&out).0, 503);
        }
    }
    drop(clients);
    let started = Instant::now();
    assert_eq!(hub.shutdown(), 0, "every connection drained");
    assert!(started.elapsed() < Duration::from_secs(3));
}

mod limits {
    use super::*;

    both_drivers!(user_rate_limit_is_per_user_and_sustained_abuse_closes_4029);

    fn user_rate_limit_is_per_user_and_sustained_abuse_closes_4029(driver: Driver) {
        let mut config = config(driver);
        config.messages_per_second = 20;
        config.burst = 5;
        let hub = start(config);
        let (mut flooder, _) = connect(hub.addr, "flooder");
        let (mut second, _) = connect(hub.addr, "flooder"); // same user: same bucket
        let (mut other, _) = connect(hub.addr, "calm");
        for id in 0..5 {
            assert_eq!(flooder.request(json!({"type": "ping"}), id)["type"], "pong");
        }
        let r = flooder.request(json!({"type": "ping"}), 5);
        assert_eq!(r["code"], "rate_limited", "{r}");
        let wait = r["retry_after_ms"].as_u64().unwrap();
        assert!((1..=50).contains(&wait), "{wait}");
        // the user's other connection shares the bucket
        assert_eq!(
            second.request(json!({"type": "ping"}), 6)["code"],
            "rate_limited"
        );
        // another user is not limited by this one's flood
        for id in 0..5 {
            assert_eq!(other.request(json!({"type": "ping"}), id)["type"], "pong");
        }
        // after the refill interval, one more goes through
        std::thread::sleep(Duration::from_millis(wait + 10));
        assert_eq!(flooder.request(json!({"type": "ping"}), 7)["type"], "pong");
        // far over the limit (more than `burst` refusals within the window): 4029
        for _ in 0..20 {
            flooder.send(json!({"type": "ping"}));
        }
        let (frames, code) = flooder.recv_until_close();
        assert_eq!(code, 4029);
        assert!(frames.iter().any(|f| f["code"] == "rate_limited"));
    }
}
