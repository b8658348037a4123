//! Connecting: the HTTP side of the public port, authentication, and the hand-off by user.

mod common;

use std::time::Duration;

use common::*;
use ringhub::config::Driver;
use serde_json::json;

both_drivers!(
    header_token_is_welcomed_on_the_users_shard,
    query_token_and_first_frame_auth,
    auth_timeout_closes_4001,
    bad_tokens_are_refused,
    http_refusals,
    garbage_and_oversized_heads_get_an_answer,
    connection_limit_answers_503,
    client_kind_and_pipelined_frames,
    incomplete_head_is_dropped_after_handshake_timeout,
    per_ip_rate_and_count_answer_429,
    a_token_expiring_in_the_far_future_is_served,
);

fn expect_429(addr: std::net::SocketAddr, user: &str) -> u64 {
    match open(addr, &format!("/ws?token={}", token(user)), &[]) {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let body: serde_json::Value =
                serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"], "rate_limited");
            resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
}

fn per_ip_rate_and_count_answer_429(driver: Driver) {
    let mut config = config(driver);
    config.connects_per_second_per_ip = 3;
    config.max_connections_per_ip = 2;
    let hub = start(config);
    let a = connect(hub.addr, "ip-a");
    let b = connect(hub.addr, "ip-b");
    // the count: a third open connection from this address is refused
    assert_eq!(expect_429(hub.addr, "ip-c"), 1);
    // the rate: that refusal was the third attempt this second; the fourth is refused too
    assert!(expect_429(hub.addr, "ip-d") >= 1);
    // /health is not an upgrade and is not limited
    assert_eq!(get(hub.addr, "/health").0, 200);
    drop((a, b));
    // both limits recover: the connections are gone and the bucket refills (a token every
    // third of a second; a refused attempt takes none)
    assert!(eventually(|| hub
        .hub()
        .shared()
        .per_ip
        .connections("127.0.0.1".parse().unwrap())
        == 0));
    let mut admitted = None;
    let recovered = eventually(|| {
        match open(hub.addr, &format!("/ws?token={}", token("ip-e")), &[]) {
            Ok(c) => admitted = Some(c),
            Err(tungstenite::Error::Http(r)) if r.status() == 429 => {}
            Err(e) => panic!("expected a welcome or a 429, got {e}"),
        }
        admitted.is_some()
    });
    assert!(recovered, "the rate bucket refills");
    let mut c = admitted.unwrap();
    assert_eq!(c.recv()["type"], "welcome");
    assert_eq!(c.request(json!({"type": "ping"}), 1)["type"], "pong");
}

fn incomplete_head_is_dropped_after_handshake_timeout(driver: Driver) {
    use std::io::{Read, Write};
    let mut config = config(driver);
    config.handshake_timeout = Duration::from_millis(300);
    let hub = start(config);
    let mut s = std::net::TcpStream::connect(hub.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "dropped without an answer");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(started.elapsed() < WAIT);
}

fn header_token_is_welcomed_on_the_users_shard(driver: Driver) {
    let hub = start_default(driver);
    let shards = hub.hub().shared().shards();
    for i in 0..12 {
        let user = format!("player-{i}");
        let (c, welcome) = connect(hub.addr, &user);
        assert_eq!(welcome["user"], user.as_str());
        assert_eq!(welcome["instance"], hub.hub().shared().instance.as_str());
        assert_eq!(welcome["ping_interval_ms"], 25000);
        assert!(welcome["conn"].as_str().is_some_and(|c| !c.is_empty()));
        assert!(welcome["expires_at"].as_u64().unwrap() > ringhub::auth::unix_now());
        let want = (ringhub::shared::fnv1a(user.as_bytes()) % shards as u64) as usize;
        assert_eq!(welcome["shard"], want, "user {user}");
        c.close();
    }
    // Every connection of one user lands on that user's shard, whichever shard accepted it.
    let conns: Vec<_> = (0..8).map(|_| connect(hub.addr, "same-user")).collect();
    let shard = &conns[0].1["shard"];
    assert!(conns.iter().all(|(_, w)| &w["shard"] == shard));
    let ids: std::collections::HashSet<_> =
        conns.iter().map(|(_, w)| w["conn"].to_string()).collect();
    assert_eq!(ids.len(), 8, "connection ids are unique");
}

fn query_token_and_first_frame_auth(driver: Driver) {
    let hub = start_default(driver);
    let mut c = open(hub.addr, &format!("/ws?token={}", token("q-user")), &[]).unwrap();
    assert_eq!(c.recv()["user"], "q-user");

    // header wins over query
    let auth = format!("Bearer {}", token("header-user"));
    let mut c = open(
        hub.addr,
        &format!("/ws?token={}", token("query-user")),
        &[("authorization", &auth)],
    )
    .unwrap();
    assert_eq!(c.recv()["user"], "header-user");

    let mut c = open(hub.addr, "/ws", &[]).unwrap();
    c.send(json!({"id": 4, "type": "auth", "token": token("frame-user")}));
    let welcome = c.recv();
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["user"], "frame-user");
    assert_eq!(welcome["id"], 4);
    // and the connection works afterwards, on its user's shard
    assert_eq!(c.request(json!({"type": "ping"}), 5)["type"], "pong");

    // a bad first-frame token, and a first frame that is not auth
    let mut c = open(hub.addr, "/ws", &[]).unwrap();
    c.send(json!({"type": "auth", "token": "nope"}));
    assert_eq!(c.recv_close().0, 4001);
    let mut c = open(hub.addr, "/ws", &[]).unwrap();
    c.send(json!({"type": "subscribe", "channel": "chat:x"}));
    assert_eq!(c.recv_close().0, 4001);
}

fn auth_timeout_closes_4001(driver: Driver) {
    let mut config = config(driver);
    config.auth_timeout = Duration::from_millis(300);
    let hub = start(config);
    let started = std::time::Instant::now();
    let mut c = open(hub.addr, "/ws", &[]).unwrap();
    assert_eq!(c.recv_close().0, 4001);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(290),
        "closed too early: {waited:?}"
    );
}

fn bad_tokens_are_refused(driver: Driver) {
    let hub = start_default(driver);
    let expired = token_with("u", &[], &[], 0);
    let wrong_key = ringhub::auth::mint(
        b"another-secret",
        &ringhub::auth::MintOptions {
            user: "u".into(),
            ttl: 60,
            ..Default::default()
        },
    );
    // `exp` is `now + 0`, within the 5 s leeway: make a really expired one by hand.
    let really_expired = {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let claims = json!({"sub": "u", "exp": ringhub::auth::unix_now() - 3600});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    assert!(
        open(hub.addr, &format!("/ws?token={expired}"), &[]).is_ok(),
        "within leeway"
    );
    for bad in [
        wrong_key.as_str(),
        really_expired.as_str(),
        "garbage",
        "a.b.c",
    ] {
        let err = open(hub.addr, &format!("/ws?token={bad}"), &[])
            .err()
            .expect("refused");
        match err {
            tungstenite::Error::Http(resp) => {
                assert_eq!(resp.status(), 401);
                let body: serde_json::Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
                assert_eq!(body["error"], "unauthorized");
            }
            other => panic!("expected HTTP 401, got {other}"),
        }
    }
}

fn http_refusals(driver: Driver) {
    let hub = start_default(driver);
    assert_eq!(get(hub.addr, "/health").0, 200);
    assert_eq!(get(hub.addr, "/ready").0, 200);
    let (status, body) = get(hub.addr, "/nowhere");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = get(hub.addr, "/ws");
    assert_eq!(
        (status, body["error"].as_str()),
        (426, Some("upgrade_required"))
    );
    let no_key = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let (status, body) = http_status(&raw_exchange(hub.addr, no_key.as_bytes()));
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    let bad_version = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    assert_eq!(
        http_status(&raw_exchange(hub.addr, bad_version.as_bytes())).0,
        400
    );
    // /echo exists only when the testing setting enables it
    assert_eq!(get(hub.addr, "/echo").0, 404);
}

fn garbage_and_oversized_heads_get_an_answer(driver: Driver) {
    let hub = start_default(driver);
    let mut big = b"GET /ws HTTP/1.1\r\nX-Pad: ".to_vec();
    big.resize(9000, b'a');
    let (status, _) = http_status(&raw_exchange(hub.addr, &big));
    assert_eq!(status, 431);
    let (status, _) = http_status(&raw_exchange(hub.addr, b"\x00\x01\x02garbage\r\n\r\n"));
    assert_eq!(status, 400);
    // a TLS ClientHello
    let hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
    let (status, _) = http_status(&raw_exchange(hub.addr, hello));
    assert_eq!(status, 400);
    // the hub is unharmed
    let (mut c, _) = connect(hub.addr, "after-garbage");
    assert_eq!(c.request(json!({"type": "ping"}), 1)["type"], "pong");
}

fn connection_limit_answers_503(driver: Driver) {
    let mut config = config(driver);
    config.max_connections = 3;
    let hub = start(config);
    let held: Vec<_> = (0..3)
        .map(|i| connect(hub.addr, &format!("u{i}")))
        .collect();
    match open(
        hub.addr,
        &format!("/ws?token={}", token("one-too-many")),
        &[],
    ) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    drop(held);
    // slots come back when connections go
    assert!(eventually(|| open(
        hub.addr,
        &format!("/ws?token={}", token("later")),
        &[]
    )
    .is_ok()));
}

fn client_kind_and_pipelined_frames(driver: Driver) {
    use std::io::{Read, Write};
    let hub = start_default(driver);
    // Upgrade, auth and a ping request in one write: nothing may be lost in the hand-off.
    let mut s = std::net::TcpStream::connect(hub.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut bytes = b"GET /ws?client=bot HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec();
    let auth = json!({"type": "auth", "token": token("pipelined")}).to_string();
    bytes.extend(masked_text(&auth));
    bytes.extend(masked_text(r#"{"id":77,"type":"ping"}"#));
    s.write_all(&bytes).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(r#""id":77"#) {
        let n = s.read(&mut buf).expect("reply to the pipelined ping");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"));
    assert!(text.contains(r#""type":"welcome""#));
    assert!(text.find("welcome") < text.find(r#""id":77"#));
}

/// A token whose `exp` is so far ahead that it overflows in milliseconds (found auditing the
/// timers: `exp * 1000` panicked the shard in debug builds, and wrapped in release).
fn a_token_expiring_in_the_far_future_is_served(driver: Driver) {
    let hub = start_default(driver);
    let far = token_with("far", &["chat:*"], &[], 20_000_000_000_000_000);
    let (mut c, _) = connect_token(hub.addr, &far);
    c.send(json!({"id": 1, "type": "ping"}));
    assert_eq!(c.recv()["type"], "pong");
}
