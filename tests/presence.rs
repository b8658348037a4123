//! Presence: shard-local state gathered from every shard, join/leave exactly once, cleanup
//! after every kind of disconnect, status.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use ringhub::config::Driver;
use serde_json::{json, Value};

both_drivers!(
    presence_gathers_every_shard,
    join_and_leave_once_per_user,
    presence_is_cleaned_after_every_kind_of_disconnect,
    status_is_announced_and_shown,
    presence_needs_permission_and_a_presence_namespace,
);

/// user -> (conns, status) from a presence reply.
fn members(c: &mut Client, channel: &str) -> BTreeMap<String, (u64, String)> {
    let r = c.request(json!({"type": "presence", "channel": channel}), 4242);
    assert_eq!(r["type"], "presence", "{r}");
    assert_eq!(r["channel"], channel);
    r["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["user"].as_str().unwrap().to_string(),
                (
                    u["conns"].as_u64().unwrap(),
                    u["status"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

fn connect_info(addr: std::net::SocketAddr, user: &str) -> Client {
    connect_token(
        addr,
        &token_info(user, json!({"name": user.to_uppercase()})),
    )
    .0
}

fn presence_gathers_every_shard(driver: Driver) {
    let hub = start_default(driver);
    let mut clients = Vec::new();
    let mut shards = std::collections::HashSet::new();
    for i in 0..12 {
        let (mut c, w) = connect_token(hub.addr, &token_info(&format!("p{i}"), json!({"seat": i})));
        shards.insert(w["shard"].as_u64().unwrap());
        c.subscribe("room:lobby");
        clients.push(c);
    }
    let mut twice = connect_info(hub.addr, "p0");
    twice.subscribe("room:lobby");
    assert_eq!(shards.len(), 4);
    let (mut asker, _) = connect(hub.addr, "asker");
    let r = asker.request(json!({"type": "presence", "channel": "room:lobby"}), 9);
    let users = r["users"].as_array().unwrap();
    assert_eq!(users.len(), 12, "{r}");
    let p0 = users.iter().find(|u| u["user"] == "p0").unwrap();
    assert_eq!(
        p0,
        &json!({"user": "p0", "conns": 2, "status": "online", "info": {"seat": 0}})
    );
    assert_eq!(members(&mut asker, "room:empty").len(), 0);
}

/// Frames of `kind` seen within a short while.
fn drain_kind(c: &mut Client, kind: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    c.ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while let Ok(m) = c.ws.read() {
        if let tungstenite::Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == kind {
                seen.push(v);
            }
        }
    }
    c.ws.get_ref().set_read_timeout(Some(WAIT)).unwrap();
    seen
}

fn join_and_leave_once_per_user(driver: Driver) {
    let hub = start_default(driver);
    let mut observer = connect_info(hub.addr, "observer");
    observer.subscribe("room:t");
    assert_eq!(
        observer.recv(),
        json!({"type": "join", "channel": "room:t", "user": "observer", "info": {"name": "OBSERVER"}})
    );
    let mut a1 = connect_info(hub.addr, "alice");
    a1.subscribe("room:t");
    let j = observer.recv();
    assert_eq!(
        j,
        json!({"type": "join", "channel": "room:t", "user": "alice", "info": {"name": "ALICE"}})
    );
    let mut a2 = connect_info(hub.addr, "alice");
    a2.subscribe("room:t");
    assert_eq!(
        drain_kind(&mut observer, "join").len(),
        0,
        "no second join for a second connection"
    );
    assert_eq!(
        a1.request(json!({"type": "unsubscribe", "channel": "room:t"}), 3)["type"],
        "unsubscribed"
    );
    assert_eq!(
        drain_kind(&mut observer, "leave").len(),
        0,
        "alice is still there"
    );
    a2.close();
    let leaves = drain_kind(&mut observer, "leave");
    assert_eq!(
        leaves,
        vec![
            json!({"type": "leave", "channel": "room:t", "user": "alice", "info": {"name": "ALICE"}})
        ]
    );
    assert!(!members(&mut observer, "room:t").contains_key("alice"));
}

fn presence_is_cleaned_after_every_kind_of_disconnect(driver: Driver) {
    use std::io::Write;
    let mut config = config(driver);
    config.ping_interval = Duration::from_millis(300);
    config.pong_timeout = Duration::from_millis(200);
    let hub = start(config);
    let mut observer = connect_info(hub.addr, "watcher");
    observer.subscribe("room:x");
    // 1. unsubscribe
    let mut u = connect_info(hub.addr, "by-unsubscribe");
    u.subscribe("room:x");
    u.request(json!({"type": "unsubscribe", "channel": "room:x"}), 1);
    // 2. a clean close
    let mut c = connect_info(hub.addr, "by-close");
    c.subscribe("room:x");
    c.close();
    // 3. the TCP connection just drops
    let mut d = connect_info(hub.addr, "by-drop");
    d.subscribe("room:x");
    drop(d);
    // 4. ping timeout: a raw client that subscribes and then never answers
    let mut s = std::net::TcpStream::connect(hub.addr).unwrap();
    let head = format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        token("by-timeout")
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&masked_text(r#"{"type":"subscribe","channel":"room:x"}"#))
        .unwrap();
    // 5. kicked by the server API; 6. its token revoked; 7. unsubscribed by the server API
    let mut k = connect_info(hub.addr, "by-kick");
    k.subscribe("room:x");
    let mut r = connect_info(hub.addr, "by-revoke");
    r.subscribe("room:x");
    let mut v = connect_info(hub.addr, "by-api-unsubscribe");
    v.subscribe("room:x");
    let mut api = hub.api();
    api.post("/api/disconnect", &json!({"user": "by-kick"}));
    let cut = ringhub::auth::unix_now() + 10;
    api.post(
        "/api/revoke",
        &json!({"user": "by-revoke", "issued_before": cut}),
    );
    api.post(
        "/api/unsubscribe",
        &json!({"user": "by-api-unsubscribe", "channel": "room:x"}),
    );
    let mut leaves: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    let want = [
        "by-unsubscribe",
        "by-close",
        "by-drop",
        "by-timeout",
        "by-kick",
        "by-revoke",
        "by-api-unsubscribe",
    ];
    while leaves.len() < want.len() && std::time::Instant::now() < deadline {
        let m = observer.recv();
        if m["type"] == "leave" {
            leaves.push(m["user"].as_str().unwrap().to_string());
        }
    }
    leaves.sort();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(leaves, want, "exactly one leave each");
    assert_eq!(
        members(&mut observer, "room:x").keys().collect::<Vec<_>>(),
        vec!["watcher"]
    );
    assert_eq!(drain_kind(&mut observer, "leave").len(), 0, "never twice");
    drop((s, k, r, v));
}

fn status_is_announced_and_shown(driver: Driver) {
    let hub = start_default(driver);
    let mut observer = connect_info(hub.addr, "obs");
    observer.subscribe("room:s");
    let mut bob = connect_info(hub.addr, "bob");
    bob.subscribe("room:s");
    bob.subscribe("room:s2");
    assert_eq!(
        bob.request(json!({"type": "status", "status": "away"}), 5)["type"],
        "ack"
    );
    let statuses = drain_kind(&mut observer, "status");
    assert_eq!(
        statuses,
        vec![json!({"type": "status", "channel": "room:s", "user": "bob", "status": "away"})]
    );
    assert_eq!(
        members(&mut observer, "room:s")["bob"],
        (1, "away".to_string())
    );
    assert_eq!(
        members(&mut observer, "room:s2")["bob"],
        (1, "away".to_string())
    );
    let r = bob.request(json!({"type": "status", "status": "sleeping"}), 6);
    assert_eq!(r["code"], "bad_request");
}

fn presence_needs_permission_and_a_presence_namespace(driver: Driver) {
    let hub = start_default(driver);
    let (mut c, _) = connect_token(hub.addr, &token_with("limited", &["table:1"], &[], 600));
    let r = c.request(json!({"type": "presence", "channel": "table:1"}), 1);
    assert_eq!(r["code"], "bad_request", "table has no presence: {r}");
    let r = c.request(json!({"type": "presence", "channel": "table:2"}), 2);
    assert_eq!(r["code"], "forbidden");
    let r = c.request(json!({"type": "presence"}), 3);
    assert_eq!(r["code"], "bad_request");
}
