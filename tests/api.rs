//! The admin port and the server API (`docs/protocol.md` §6): every endpoint and error
//! status, over real HTTP, acting on real WebSocket clients.

mod common;

use std::time::Duration;

use common::admin::{AdminClient, API_KEY};
use common::*;
use ringhub::config::Driver;
use serde_json::json;

#[test]
fn open_endpoints_and_keep_alive() {
    let hub = start_default(Driver::IoUring);
    let mut c = AdminClient::new(hub.admin).without_key();
    let r = c.get("/health");
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    let r = c.get("/ready");
    assert_eq!(r.status, 200);
    let r = c.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().contains("text"),
        "{:?}",
        r.headers
    );
    assert!(
        r.body.contains("ringhub_connections{shard=\"3\"} 0"),
        "{}",
        r.body
    );
    // The same connection carried all three: keep-alive.
    let r = c.get("/nope");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("not_found"))
    );
    let r = c.get("/api/nope");
    assert_eq!(r.status, 404);
}

#[test]
fn api_keys_are_required_and_checked() {
    let hub = start_default(Driver::IoUring);
    let mut c = AdminClient::new(hub.admin).without_key();
    let r = c.get("/api/info");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("unauthorized"))
    );
    c.key = Some("wrong-key".into());
    assert_eq!(c.get("/api/info").status, 401);
    c.key = Some(API_KEY.into());
    let r = c.get("/api/info");
    assert_eq!(r.status, 200, "{}", r.body);
    let info = r.json();
    assert_eq!(info["shards"], 4);
    assert_eq!(info["connections_per_shard"].as_array().unwrap().len(), 4);
    assert!(info["instance"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(info["version"].is_string() && info["uptime_s"].is_u64());

    // Without configured keys the API is closed to everyone.
    let mut config = config(Driver::IoUring);
    config.api_keys.clear();
    let closed = start(config);
    let r = AdminClient::new(closed.admin).get("/api/info");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("forbidden"))
    );
}

#[test]
fn bad_requests_get_clear_statuses() {
    let hub = start_default(Driver::IoUring);
    let mut c = hub.api();
    let r = c.call("POST", "/api/publish", Some(b"{nope"), &[]);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("bad_request"))
    );
    let r = c.post(
        "/api/publish",
        &json!({"channel": "bad channel!", "data": 1}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = c.post("/api/publish", &json!({"channel": "chat:1"}));
    assert_eq!(r.status, 400, "data is required: {}", r.body);
    let r = c.post("/api/send", &json!({"user": "", "data": 1}));
    assert_eq!(r.status, 400);
    let r = c.post("/api/revoke", &json!({"nothing": true}));
    assert_eq!(r.status, 400);
    let r = c.get("/api/publish");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = c.get("/api/presence/chat:1");
    assert_eq!(r.status, 400, "no presence on chat: {}", r.body);
    let r = c.get("/api/history/chat:1");
    assert_eq!(r.status, 404, "chat keeps no history: {}", r.body);
    // The connection is still good after all that.
    assert_eq!(c.get("/api/info").status, 200);
}

/// Over 1 MiB is 413, announced or not. The sender gets to finish sending (the server
/// reads and discards), so it reads its 413 rather than a reset, and keeps its connection.
#[test]
fn too_large_bodies_get_413_and_keep_the_connection() {
    let hub = start_default(Driver::IoUring);
    let mut c = hub.api();
    let too_large = |r: &admin::Response| {
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (413, Some("too_large")),
            "{}",
            r.body
        )
    };
    let big = vec![b' '; ringhub::control::MAX_BODY + 1];
    too_large(&c.call("POST", "/api/publish", Some(&big), &[]));
    assert_eq!(c.get("/api/info").status, 200, "kept alive");

    // Chunked: no length announced, 1 MiB + 1 in 64 KiB chunks.
    let mut chunked = format!(
        "POST /api/publish HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {API_KEY}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in big.chunks(64 << 10) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    too_large(&c.raw(&chunked));
    assert_eq!(c.get("/api/info").status, 200, "kept alive");

    // A client that waits for 100-continue is told at once, without sending its 100 MiB.
    let mut waiting = hub.api();
    too_large(
        &waiting.raw(
            format!(
                "POST /api/publish HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {API_KEY}\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                100 << 20
            )
            .as_bytes(),
        ),
    );
    assert_eq!(hub.api().get("/api/info").status, 200);
}

fn publish_send_broadcast(driver: Driver) {
    let hub = start_default(driver);
    let mut api = hub.api();
    let mut subs: Vec<Client> = (0..8)
        .map(|i| {
            let (mut c, _) = connect(hub.addr, &format!("api-sub-{i}"));
            c.subscribe("chat:lobby");
            c
        })
        .collect();
    let data = r#"{ "n" : 1.50 }"#;
    let body = format!(r#"{{"channel":"chat:lobby","data":{data}}}"#);
    let r = api.call("POST", "/api/publish", Some(body.as_bytes()), &[]);
    assert_eq!((r.status, r.json()), (200, json!({})));
    for c in &mut subs {
        let frame = c.ws.read().unwrap().into_text().unwrap();
        assert_eq!(
            frame.as_str(),
            format!(r#"{{"type":"message","channel":"chat:lobby","data":{data}}}"#),
            "no `from`, data byte for byte"
        );
    }

    let r = api.post(
        "/api/broadcast",
        &json!({"channels": ["chat:lobby", "chat:other"], "data": [2]}),
    );
    assert_eq!(r.status, 200);
    for c in &mut subs {
        assert_eq!(
            c.recv(),
            json!({"type": "message", "channel": "chat:lobby", "data": [2]})
        );
    }

    let r = api.post(
        "/api/send",
        &json!({"user": "api-sub-3", "data": {"hi": 1}}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(subs[3].recv(), json!({"type": "direct", "data": {"hi": 1}}));

    let r = api.post("/api/broadcast_all", &json!({"data": "maintenance"}));
    assert_eq!(r.status, 200);
    for c in &mut subs {
        assert_eq!(
            c.recv(),
            json!({"type": "broadcast", "data": "maintenance"})
        );
    }
    subs[0].expect_silence(Duration::from_millis(100));
}

fn disconnect_closes_one_user_everywhere(driver: Driver) {
    let hub = start_default(driver);
    let (mut a1, _) = connect(hub.addr, "kicked");
    let (mut a2, _) = connect(hub.addr, "kicked");
    let (mut b, _) = connect(hub.addr, "stays");
    let r = hub.api().post(
        "/api/disconnect",
        &json!({"user": "kicked", "reason": "banned"}),
    );
    assert_eq!((r.status, r.json()), (200, json!({"closed": 2})));
    for c in [&mut a1, &mut a2] {
        assert_eq!(c.recv_close(), (4004, "banned".into()));
    }
    assert_eq!(b.request(json!({"type": "ping"}), 1)["type"], "pong");
    let r = hub
        .api()
        .post("/api/disconnect", &json!({"user": "nobody"}));
    assert_eq!(r.json(), json!({"closed": 0}));
}

fn jti_token(user: &str, jti: &str, issued_at: Option<u64>) -> String {
    ringhub::auth::mint(
        SECRET.as_bytes(),
        &ringhub::auth::MintOptions {
            user: user.into(),
            ttl: 600,
            jti: Some(jti.into()),
            issued_at,
            ..Default::default()
        },
    )
}

fn revoke_by_jti(driver: Driver) {
    let hub = start_default(driver);
    let revoked = jti_token("rv", "token-1", None);
    let other = jti_token("rv", "token-2", None);
    let (mut c1, _) = connect_token(hub.addr, &revoked);
    let (mut c2, _) = connect_token(hub.addr, &other);
    let r = hub.api().post("/api/revoke", &json!({"jti": "token-1"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["closed"], 1);
    assert_eq!(c1.recv_close().0, 4004);
    assert_eq!(c2.request(json!({"type": "ping"}), 1)["type"], "pong");
    // Refused at connect, in the header or the query...
    assert_eq!(
        refused(
            hub.addr,
            "/ws",
            &[("authorization", &format!("Bearer {revoked}"))]
        ),
        401
    );
    assert_eq!(refused(hub.addr, &format!("/ws?token={revoked}"), &[]), 401);
    // ...and as a first frame.
    let mut c = open(hub.addr, "/ws", &[]).unwrap();
    c.send(json!({"type": "auth", "token": revoked}));
    assert_eq!(c.recv_close().0, 4004);
    // A refresh with a revoked token is refused; the connection stays.
    let r = c2.request(json!({"type": "refresh", "token": revoked}), 2);
    assert_eq!(r["code"], "unauthorized", "{r}");
    connect_token(hub.addr, &other);
}

fn revoke_by_user_issued_before(driver: Driver) {
    let hub = start_default(driver);
    let now = ringhub::auth::unix_now();
    let old = jti_token("ru", "old", Some(now - 20));
    let (mut c_old, _) = connect_token(hub.addr, &old);
    let (mut bystander, _) = connect(hub.addr, "someone-else");
    let r = hub.api().post(
        "/api/revoke",
        &json!({"user": "ru", "issued_before": now - 10}),
    );
    assert_eq!((r.status, r.json()["closed"].as_u64()), (200, Some(1)));
    assert_eq!(c_old.recv_close().0, 4004);
    assert_eq!(
        refused(
            hub.addr,
            "/ws",
            &[("authorization", &format!("Bearer {old}"))]
        ),
        401
    );
    // A token issued after the cut is welcome.
    connect_token(hub.addr, &jti_token("ru", "new", Some(now)));
    assert_eq!(
        bystander.request(json!({"type": "ping"}), 1)["type"],
        "pong"
    );
}

fn server_side_subscriptions(driver: Driver) {
    let hub = start_default(driver);
    let mut api = hub.api();
    let (mut c1, _) = connect(hub.addr, "srv-sub");
    let (mut c2, _) = connect(hub.addr, "srv-sub");
    // The token has no claim on vip:*; the backend subscribes anyway.
    let r = api.post(
        "/api/subscribe",
        &json!({"user": "srv-sub", "channel": "vip:1"}),
    );
    assert_eq!((r.status, r.json()["connections"].as_u64()), (200, Some(2)));
    for c in [&mut c1, &mut c2] {
        assert_eq!(c.recv(), json!({"type": "subscribed", "channel": "vip:1"}));
    }
    api.post("/api/publish", &json!({"channel": "vip:1", "data": 7}));
    for c in [&mut c1, &mut c2] {
        assert_eq!(c.recv()["data"], 7);
    }
    let r = api.post(
        "/api/unsubscribe",
        &json!({"user": "srv-sub", "channel": "vip:1"}),
    );
    assert_eq!(r.json()["connections"], 2);
    for c in [&mut c1, &mut c2] {
        assert_eq!(
            c.recv(),
            json!({"type": "unsubscribed", "channel": "vip:1"})
        );
    }
    api.post("/api/publish", &json!({"channel": "vip:1", "data": 8}));
    c1.expect_silence(Duration::from_millis(100));
}

fn presence_from_every_shard(driver: Driver) {
    let hub = start_default(driver);
    let mut clients = Vec::new();
    for i in 0..12 {
        let (mut c, _) = connect(hub.addr, &format!("pr-{i}"));
        c.subscribe("room:api");
        clients.push(c);
    }
    let r = hub.api().get("/api/presence/room:api");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let mut users: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    users.sort();
    assert_eq!(users.len(), 12, "{v}");
    assert_eq!(v["users"][0]["conns"], 1);
    assert_eq!(v["users"][0]["status"], "online");
    // A personal channel's `#` travels percent-encoded.
    let r = hub.api().get("/api/presence/room%3Aapi");
    assert_eq!(r.json()["users"].as_array().unwrap().len(), 12);
}

both_drivers!(
    publish_send_broadcast,
    disconnect_closes_one_user_everywhere,
    revoke_by_jti,
    revoke_by_user_issued_before,
    server_side_subscriptions,
    presence_from_every_shard,
);

#[test]
fn revocations_survive_a_restart_with_redis() {
    let Some(redis) = common::redis::Redis::start() else {
        return;
    };
    let mut config = config(Driver::IoUring);
    config.redis_url = Some(redis.url());
    let token = jti_token("persist", "keep-me-revoked", None);
    let hub = start(config.clone());
    let r = hub
        .api()
        .post("/api/revoke", &json!({"jti": "keep-me-revoked"}));
    assert_eq!(r.json()["persisted"], true, "{}", r.body);
    hub.shutdown();
    let hub = start(config);
    assert_eq!(
        refused(
            hub.addr,
            "/ws",
            &[("authorization", &format!("Bearer {token}"))]
        ),
        401
    );
    connect(hub.addr, "persist");
}

#[test]
fn correlation_ids_are_echoed() {
    let hub = start_default(Driver::IoUring);
    let mut api = hub.api();
    let r = api.call(
        "GET",
        "/api/info",
        None,
        &[("X-Correlation-Id", "trace-42")],
    );
    assert_eq!(r.header("x-correlation-id"), Some("trace-42"));
    let r = api.get("/api/info");
    assert_eq!(r.header("x-correlation-id").map(str::len), Some(16));
}
