//! Chat rules per namespace (length, invisible characters, blocked words, a per-user
//! rate) and mutes through the server API: a publication that breaks a rule gets an error
//! frame, and nothing else is affected; mutes hold across instances and restarts.

mod common;

use std::time::Duration;

use common::admin::find_metric;
use common::cluster::{cluster_with, scrape};
use common::redis::Redis;
use common::*;
use ringhub::config::{Driver, Namespace};
use serde_json::{json, Value};

both_drivers!(
    publications_that_break_a_rule_are_refused_and_nothing_else_is_affected,
    a_muted_user_is_refused_until_the_mute_is_lifted,
);

fn chat_config(driver: Driver, words: &std::path::Path) -> ringhub::Config {
    let mut c = config(driver);
    let chat = Namespace {
        public: true,
        client_publish: true,
        max_text_length: Some(12),
        reject_invisible: true,
        blocked_words_file: Some(words.to_path_buf()),
        user_publishes_per_second: 1,
        user_publish_burst: 6,
        ..Namespace::default()
    };
    c.namespaces.insert("chat".into(), chat);
    c
}

fn words_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ringhub-words-{}-{name}", std::process::id()));
    std::fs::write(&path, "# blocked\nbadword\nWorse\n").unwrap();
    path
}

fn publish(c: &mut Client, data: Value, id: u64) -> Value {
    c.request(
        json!({"type": "publish", "channel": "chat:lobby", "data": data}),
        id,
    )
}

fn publications_that_break_a_rule_are_refused_and_nothing_else_is_affected(driver: Driver) {
    let words = words_file(&format!("{driver:?}"));
    let hub = start(chat_config(driver, &words));
    let (mut listener, _) = connect(hub.addr, "listener");
    listener.subscribe("chat:lobby");
    let (mut alice, _) = connect(hub.addr, "alice");

    assert_eq!(publish(&mut alice, json!("hello"), 1)["type"], "ack");
    let r = publish(&mut alice, json!({"text": "much too long a message"}), 2);
    assert_eq!(r["code"], "too_large", "{r}");
    let r = publish(&mut alice, json!("hid\u{200b}den"), 3);
    assert_eq!(r["code"], "bad_request", "{r}");
    assert!(r["message"].as_str().unwrap().contains("U+200B"), "{r}");
    let r = publish(&mut alice, json!("so WORSE"), 4);
    assert_eq!(r["code"], "forbidden", "{r}");
    assert_eq!(publish(&mut alice, json!("fine again"), 5)["type"], "ack");
    // Only the two good ones went out.
    let got: Vec<Value> = (0..2).map(|_| listener.recv()["data"].clone()).collect();
    assert_eq!(got, vec![json!("hello"), json!("fine again")]);
    listener.expect_silence(Duration::from_millis(100));

    // The namespace's own rate: 6 in a burst (refusals count too), then one per second.
    let refused = (6..12)
        .map(|id| publish(&mut alice, json!("x"), id))
        .find(|r| r["code"] == "rate_limited")
        .expect("the namespace rate refuses");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0, "{refused}");
    // Another user is not affected, nor is another namespace for alice.
    let (mut bob, _) = connect(hub.addr, "bob");
    assert_eq!(publish(&mut bob, json!("hi"), 1)["type"], "ack");
    let r = alice.request(
        json!({"type": "publish", "channel": "table:1", "data": 1}),
        20,
    );
    assert_eq!(r["type"], "ack", "{r}");
    let _ = std::fs::remove_file(words);
}

fn a_muted_user_is_refused_until_the_mute_is_lifted(driver: Driver) {
    let hub = start(config(driver));
    let (mut alice, _) = connect(hub.addr, "alice");
    let (mut bob, _) = connect(hub.addr, "bob");
    let mut api = hub.api();
    let mute = json!({"user": "alice", "namespace": "chat", "reason": "spam"});
    let r = api.post("/api/mute", &mute);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["persisted"], false, "no Redis");
    let refused = eventually(|| publish(&mut alice, json!("hi"), 1)["code"] == "forbidden");
    assert!(refused);
    let r = publish(&mut alice, json!("hi"), 2);
    assert!(r["message"].as_str().unwrap().contains("spam"), "{r}");
    assert_eq!(
        publish(&mut bob, json!("hi"), 3)["type"],
        "ack",
        "bob is not muted"
    );
    let r = alice.request(
        json!({"type": "publish", "channel": "table:1", "data": 1}),
        4,
    );
    assert_eq!(r["type"], "ack", "another namespace");

    let listed = api.get("/api/mute?user=alice").json();
    assert_eq!(listed["mutes"], json!([mute]));
    let body = json!({"user": "alice", "namespace": "chat"}).to_string();
    let r = api.call("DELETE", "/api/mute", Some(body.as_bytes()), &[]);
    assert_eq!(r.json()["lifted"], true, "{:?}", r.body);
    assert_eq!(publish(&mut alice, json!("hi"), 5)["type"], "ack");

    // A mute that ends.
    let until = ringhub::auth::unix_ms() / 1000 + 2;
    let r = api.post(
        "/api/mute",
        &json!({"user": "alice", "channel": "chat:lob*", "until": until}),
    );
    assert_eq!(r.status, 200);
    assert!(eventually(
        || publish(&mut alice, json!("hi"), 6)["code"] == "forbidden"
    ));
    assert_eq!(
        api.get("/api/mute").json()["mutes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let bad = api.post("/api/mute", &json!({"user": "alice"}));
    assert_eq!(bad.status, 400);
    let past = api.post(
        "/api/mute",
        &json!({"user": "a", "namespace": "chat", "until": 1}),
    );
    assert_eq!(past.status, 400);
}

#[test]
fn mutes_hold_across_instances_and_restarts_with_redis() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 2, |_| {});
    let (mut alice, _) = connect(hubs[1].addr, "alice");
    let r = hubs[0]
        .api()
        .post("/api/mute", &json!({"user": "alice", "channel": "chat:*"}));
    assert_eq!(r.json()["persisted"], true);
    let refused = eventually(|| publish(&mut alice, json!("hi"), 1)["code"] == "forbidden");
    assert!(refused, "muted on the other instance too");
    drop(alice);
    drop(hubs);
    // A new instance reads the mutes back from Redis.
    let mut c = config(Driver::IoUring);
    c.redis_url = Some(redis.url());
    let hub = start(c);
    assert!(eventually(|| find_metric(
        &scrape(&hub),
        "ringhub_relay_up"
    ) == Some(1.0)));
    let (mut alice, _) = connect(hub.addr, "alice");
    assert!(eventually(
        || publish(&mut alice, json!("hi"), 2)["code"] == "forbidden"
    ));
}
