//! Several hub instances joined by a real Redis: cross-instance publish (order, no loss,
//! no duplicates), direct messages, presence, the server API acting across instances,
//! ingress and egress read and written with a plain Redis client, and an outage.

mod common;

use std::time::{Duration, Instant};

use common::admin::find_metric;
use common::cluster::{cluster, eventually_long, relay_subscribed, scrape};
use common::redis::Redis;
use common::*;
use serde_json::{json, Value};

#[test]
fn publications_cross_instances_in_order_once() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster(&redis, 3);
    let mut subs: Vec<Client> = Vec::new();
    for (i, hub) in hubs.iter().enumerate() {
        for j in 0..2 {
            let (mut c, _) = connect(hub.addr, &format!("sub-{i}-{j}"));
            c.subscribe("chat:cross");
            subs.push(c);
        }
    }
    relay_subscribed(&hubs[1], 1);
    relay_subscribed(&hubs[2], 1);
    let (mut p1, _) = connect(hubs[0].addr, "pub-a");
    let (mut p2, _) = connect(hubs[1].addr, "pub-b");
    const N: u64 = 300;
    for n in 0..N {
        p1.send(json!({"type": "publish", "channel": "chat:cross", "data": {"p": "a", "n": n}}));
        p2.send(json!({"type": "publish", "channel": "chat:cross", "data": {"p": "b", "n": n}}));
    }
    for c in &mut subs {
        let mut next = [0u64, 0u64];
        for _ in 0..2 * N {
            let m = c.recv();
            assert_eq!(m["type"], "message", "{m}");
            let p = (m["data"]["p"] == "b") as usize;
            assert_eq!(
                m["data"]["n"], next[p],
                "per-publisher order, no loss, no duplicate: {m}"
            );
            next[p] += 1;
            assert_eq!(m["from"], if p == 0 { "pub-a" } else { "pub-b" });
        }
    }
    // No duplicate comes late: one quiet period, shared by every subscriber.
    let quiet = Instant::now() + Duration::from_millis(200);
    for c in &mut subs {
        let left = quiet.saturating_duration_since(Instant::now());
        c.expect_silence(left.max(Duration::from_millis(10)));
    }
}

#[test]
fn direct_messages_and_presence_across_instances() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster(&redis, 2);
    let (mut alice, _) = connect(hubs[0].addr, "alice");
    let (mut bob, _) = connect(hubs[1].addr, "bob");
    let (mut bob2, _) = connect(hubs[0].addr, "bob");
    alice.request(json!({"type": "send", "user": "bob", "data": {"hi": 1}}), 1);
    for b in [&mut bob, &mut bob2] {
        assert_eq!(
            b.recv(),
            json!({"type": "direct", "data": {"hi": 1}, "from": "alice"})
        );
    }
    bob.expect_silence(Duration::from_millis(100));

    // join/leave travel; presence covers both instances and counts bob once with 2 conns.
    bob.subscribe("room:lobby");
    assert_eq!(bob.recv()["user"], "bob", "one's own join");
    relay_subscribed(&hubs[1], 1);
    alice.subscribe("room:lobby");
    let join = bob.recv();
    assert_eq!(
        (join["type"].as_str(), join["user"].as_str()),
        (Some("join"), Some("alice"))
    );
    bob2.subscribe("room:lobby");
    let p = alice.request(json!({"type": "presence", "channel": "room:lobby"}), 2);
    let mut users: Vec<(String, u64)> = p["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["user"].as_str().unwrap().to_string(),
                u["conns"].as_u64().unwrap(),
            )
        })
        .collect();
    users.sort();
    assert_eq!(users, vec![("alice".into(), 1), ("bob".into(), 2)], "{p}");
    let api = hubs[1].api().get("/api/presence/room:lobby").json();
    assert_eq!(api["users"].as_array().unwrap().len(), 2, "{api}");
    // bob's second instance is not a second join, nor is leaving it a leave: joins and
    // leaves are decided cluster-wide.
    bob2.unsubscribe_quietly("room:lobby");
    let seen = alice.frames_for(Duration::from_millis(500));
    assert!(
        seen.iter().all(|m| m["user"] != "bob"),
        "no join/leave for bob: {seen:?}"
    );
    alice.close();
    let leave = bob.recv();
    assert_eq!(
        (leave["type"].as_str(), leave["user"].as_str()),
        (Some("leave"), Some("alice"))
    );
    bob.expect_silence(Duration::from_millis(200));
}

#[test]
fn server_api_on_one_instance_acts_on_users_of_another() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster(&redis, 2);
    let mut api = hubs[0].api();
    let (mut far, _) = connect(hubs[1].addr, "far-user");
    let r = api.post("/api/send", &json!({"user": "far-user", "data": 1}));
    assert_eq!(r.status, 200);
    assert_eq!(far.recv(), json!({"type": "direct", "data": 1}));
    api.post("/api/broadcast_all", &json!({"data": "all"}));
    assert_eq!(far.recv(), json!({"type": "broadcast", "data": "all"}));
    let r = api.post(
        "/api/subscribe",
        &json!({"user": "far-user", "channel": "vip:9"}),
    );
    assert_eq!(r.json()["connections"], 0, "this instance's count");
    assert_eq!(
        far.recv(),
        json!({"type": "subscribed", "channel": "vip:9"})
    );
    relay_subscribed(&hubs[1], 1);
    api.post("/api/publish", &json!({"channel": "vip:9", "data": "v"}));
    assert_eq!(far.recv()["data"], "v");
    let r = api.post(
        "/api/disconnect",
        &json!({"user": "far-user", "reason": "bye"}),
    );
    assert_eq!(r.json(), json!({"closed": 0}));
    assert_eq!(far.recv_close(), (4004, "bye".into()));

    let token = ringhub::auth::mint(
        SECRET.as_bytes(),
        &ringhub::auth::MintOptions {
            user: "rev".into(),
            ttl: 600,
            jti: Some("j-far".into()),
            ..Default::default()
        },
    );
    let (mut held, _) = connect_token(hubs[1].addr, &token);
    let r = api.post("/api/revoke", &json!({"jti": "j-far"}));
    assert_eq!(r.status, 200);
    assert_eq!(held.recv_close().0, 4004);
    assert!(eventually(|| open(
        hubs[1].addr,
        &format!("/ws?token={token}"),
        &[]
    )
    .is_err()));
    assert_eq!(
        refused(hubs[1].addr, &format!("/ws?token={token}"), &[]),
        401
    );

    let info = hubs[0].api().get("/api/info").json();
    assert_eq!(info["relay"]["up"], true);
    assert_eq!(info["relay"]["peers"][0]["instance"], "inst-1", "{info}");
}

fn xrange(redis: &Redis) -> Vec<std::collections::HashMap<String, String>> {
    let mut c = redis.client();
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = ::redis::cmd("XRANGE")
        .arg("ringhub:ingress.v1")
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap();
    entries.into_iter().map(|(_, f)| f).collect()
}

#[test]
fn ingress_and_egress_through_redis() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster(&redis, 2);
    let (mut c, welcome) = connect(hubs[0].addr, "player");
    let r = c.request(json!({"type": "event", "event": "chat.message.send", "data": {"text": "gg"}, "correlation_id": "c-1"}), 1);
    assert_eq!(r, json!({"id": 1, "type": "ack"}));
    let r = c.request(
        json!({"type": "publish", "channel": "ingest:bids", "data": [5]}),
        2,
    );
    assert_eq!(r["type"], "ack");
    let entries = xrange(&redis);
    let event = entries
        .iter()
        .find(|e| e["type"] == "event")
        .expect("the event is in the stream");
    assert_eq!(event["event"], "chat.message.send");
    assert_eq!(event["data"], r#"{"text":"gg"}"#);
    assert_eq!(event["user"], "player");
    assert_eq!(event["conn"], welcome["conn"].as_str().unwrap());
    assert_eq!(event["instance"], "inst-0");
    assert_eq!(event["correlation_id"], "c-1");
    assert!(event["ts"].parse::<u64>().unwrap() > 1_700_000_000_000);
    let publish = entries
        .iter()
        .find(|e| e["type"] == "publish")
        .expect("ingress publish");
    assert_eq!(
        (publish["channel"].as_str(), publish["data"].as_str()),
        ("ingest:bids", "[5]")
    );
    assert!(entries
        .iter()
        .any(|e| e["type"] == "session.started" && e["user"] == "player"));
    c.close();
    assert!(eventually(|| xrange(&redis)
        .iter()
        .any(|e| e["type"] == "session.ended"
            && e["user"] == "player"
            && e.contains_key("duration_ms"))));

    // Egress: every instance applies `egress` once; `egress.<instance>` reaches the cluster.
    let (mut a, _) = connect(hubs[0].addr, "ea");
    let (mut b, _) = connect(hubs[1].addr, "eb");
    a.subscribe("chat:eg");
    b.subscribe("chat:eg");
    relay_subscribed(&hubs[0], 1);
    relay_subscribed(&hubs[1], 1);
    let mut r = redis.client();
    let publish = |r: &mut ::redis::Connection, topic: &str, msg: &str| {
        let _: i64 = ::redis::cmd("PUBLISH")
            .arg(topic)
            .arg(msg)
            .query(r)
            .unwrap();
    };
    publish(&mut r, "ringhub:egress", "{not json");
    publish(&mut r, "ringhub:egress", r#"{"op":"explode"}"#);
    publish(
        &mut r,
        "ringhub:egress",
        r#"{"op":"publish","channel":"chat:eg","data":{"k":1}}"#,
    );
    for c in [&mut a, &mut b] {
        assert_eq!(
            c.recv(),
            json!({"type": "message", "channel": "chat:eg", "data": {"k": 1}})
        );
    }
    publish(
        &mut r,
        "ringhub:egress.inst-0",
        r#"{"op":"send","user":"eb","data":2}"#,
    );
    assert_eq!(b.recv(), json!({"type": "direct", "data": 2}));
    publish(
        &mut r,
        "ringhub:egress.inst-1",
        r#"{"op":"broadcast_all","data":3}"#,
    );
    for c in [&mut a, &mut b] {
        assert_eq!(c.recv(), json!({"type": "broadcast", "data": 3}));
    }
    publish(
        &mut r,
        "ringhub:egress",
        r#"{"op":"disconnect","user":"eb"}"#,
    );
    assert_eq!(b.recv_close().0, 4004);
    a.expect_silence(Duration::from_millis(100));
    let m = scrape(&hubs[0]);
    assert!(
        find_metric(&m, "ringhub_egress_malformed_total").unwrap() >= 2.0,
        "{m}"
    );
}

#[test]
fn redis_outage_keeps_local_delivery_and_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let hubs = cluster(&redis, 2);
    let (mut a, _) = connect(hubs[0].addr, "oa");
    let (mut a2, _) = connect(hubs[0].addr, "oa2");
    let (mut b, _) = connect(hubs[1].addr, "ob");
    for c in [&mut a, &mut a2, &mut b] {
        c.subscribe("chat:outage");
    }
    relay_subscribed(&hubs[1], 1);
    redis.stop();
    assert!(eventually(|| find_metric(
        &scrape(&hubs[0]),
        "ringhub_relay_up"
    ) == Some(0.0)));
    // Local delivery goes on; /health stays 200; ingress says it cannot.
    a.request(
        json!({"type": "publish", "channel": "chat:outage", "data": "local"}),
        1,
    );
    assert_eq!(a2.recv()["data"], "local");
    assert_eq!(hubs[0].api().without_key().get("/health").status, 200);
    let r = a.request(json!({"type": "event", "event": "e", "data": 1}), 2);
    assert_eq!(r["code"], "unavailable", "{r}");
    let m = scrape(&hubs[0]);
    assert!(
        find_metric(&m, "ringhub_relay_dropped_total").unwrap() >= 1.0
            || find_metric(&m, "ringhub_relay_publish_failures_total").unwrap() >= 1.0,
        "{m}"
    );

    // Redis is back at the same address: the relays reconnect and resubscribe by themselves.
    redis.restart();
    assert!(eventually_long(|| find_metric(
        &scrape(&hubs[0]),
        "ringhub_relay_up"
    ) == Some(1.0)
        && find_metric(&scrape(&hubs[1]), "ringhub_relay_up")
            == Some(1.0)));
    relay_subscribed(&hubs[1], 1);
    assert!(find_metric(&scrape(&hubs[1]), "ringhub_relay_reconnects_total").unwrap() >= 1.0);
    let mut got = Value::Null;
    let ok = eventually_long(|| {
        a.send(json!({"type": "publish", "channel": "chat:outage", "data": "again"}));
        b.ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match b.ws.read() {
            Ok(m) => {
                got = serde_json::from_str(m.to_text().unwrap_or("null")).unwrap_or(Value::Null);
                got["data"] == "again"
            }
            Err(_) => false,
        }
    });
    assert!(ok, "cross-instance delivery resumes: {got}");
}
