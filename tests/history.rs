//! History and recovery on one instance: offsets, `since`, trimming by size and age,
//! epochs, `history` requests and the API.

mod common;

use std::time::Duration;

use common::history::{offsets, recover_repeatedly, subscribe_since, Hammer};
use common::*;
use ringhub::config::{Driver, Namespace};
use serde_json::{json, Value};

fn history_config(driver: Driver) -> ringhub::Config {
    let mut c = config(driver);
    common::history::with_history(&mut c);
    let room = Namespace {
        public: true,
        client_publish: true,
        history_size: 100,
        presence: true,
        join_leave: true,
        ..Namespace::default()
    };
    c.namespaces.insert("hroom".into(), room);
    c
}

fn publish(c: &mut Client, channel: &str, n: u64, id: u64) -> Value {
    c.request(
        json!({"type": "publish", "channel": channel, "data": {"n": n}}),
        id,
    )
}

fn offsets_and_recovery(driver: Driver) {
    let hub = start(history_config(driver));
    let (mut sub, _) = connect(hub.addr, "hs");
    let first = subscribe_since(&mut sub, "log:a", None);
    assert_eq!(first["offset"], 0);
    let epoch = first["epoch"].as_str().unwrap().to_string();
    assert!(first.get("recovered").is_none());
    let (mut p, _) = connect(hub.addr, "hp");
    for n in 1..=3 {
        assert_eq!(
            publish(&mut p, "log:a", n, n),
            json!({"id": n, "type": "ack", "offset": n})
        );
    }
    for n in 1..=3 {
        let m = sub.recv();
        assert_eq!(
            (
                m["offset"].as_u64(),
                m["data"]["n"].as_u64(),
                m["from"].as_str()
            ),
            (Some(n), Some(n), Some("hp"))
        );
    }
    sub.close();
    for n in 4..=10 {
        publish(&mut p, "log:a", n, n);
    }
    let (mut back, _) = connect(hub.addr, "hs");
    let r = subscribe_since(&mut back, "log:a", Some((3, &epoch)));
    assert_eq!(
        (r["recovered"].as_bool(), r["offset"].as_u64()),
        (Some(true), Some(10)),
        "{r}"
    );
    for n in 4..=10 {
        assert_eq!(back.recv()["offset"], n);
    }
    publish(&mut p, "log:a", 11, 11);
    assert_eq!(back.recv()["offset"], 11);
    back.expect_silence(Duration::from_millis(100));
    // Another epoch cannot be recovered from.
    let (mut other, _) = connect(hub.addr, "hs2");
    let r = subscribe_since(&mut other, "log:a", Some((3, "not-the-epoch")));
    assert_eq!(
        (r["recovered"].as_bool(), r["offset"].as_u64()),
        (Some(false), Some(11))
    );
    other.expect_silence(Duration::from_millis(100));
}

/// A publisher hammers the channel while a subscriber drops and recovers again and again:
/// every offset arrives exactly once, in order.
fn recovery_under_load_has_no_gap_or_duplicate(driver: Driver) {
    let hub = start(history_config(driver));
    let hammer = Hammer::start(hub.addr, "log:busy");
    let last = recover_repeatedly(&[hub.addr], "log:busy", 12, Duration::from_millis(60));
    let sent = hammer.stop();
    assert!(last > 50 && last <= sent, "{last} of {sent}");
}

fn trimmed_by_size_and_age(driver: Driver) {
    let hub = start(history_config(driver));
    let (mut p, _) = connect(hub.addr, "trim");
    for n in 1..=10 {
        publish(&mut p, "short:x", n, n);
    }
    let h = p.request(json!({"type": "history", "channel": "short:x"}), 20);
    let offsets = offsets(&h);
    assert_eq!(offsets, vec![8, 9, 10], "{h}");
    assert_eq!(h["publications"][0]["from"], "trim");
    assert!(h["publications"][0]["ts"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(h["publications"][0]["data"], json!({"n": 8}));
    let epoch = h["epoch"].as_str().unwrap().to_string();
    let (mut c, _) = connect(hub.addr, "trim-sub");
    let r = subscribe_since(&mut c, "short:x", Some((2, &epoch)));
    assert_eq!(r["recovered"], false, "offsets 3..7 are gone: {r}");
    let (mut c2, _) = connect(hub.addr, "trim-sub2");
    let r = subscribe_since(&mut c2, "short:x", Some((7, &epoch)));
    assert_eq!(r["recovered"], true, "{r}");
    for n in 8..=10 {
        assert_eq!(c2.recv()["offset"], n);
    }
    // history with since and limit
    let h = p.request(
        json!({"type": "history", "channel": "short:x", "since": 8, "limit": 1}),
        21,
    );
    assert_eq!(h["publications"].as_array().unwrap().len(), 1);
    assert_eq!(h["publications"][0]["offset"], 9);

    // By age: 300 ms.
    for n in 1..=2 {
        publish(&mut p, "brief:y", n, 30 + n);
    }
    let h = p.request(json!({"type": "history", "channel": "brief:y"}), 40);
    assert_eq!(h["publications"].as_array().unwrap().len(), 2);
    let mut h = Value::Null;
    let expired = eventually(|| {
        h = p.request(json!({"type": "history", "channel": "brief:y"}), 41);
        h["publications"] == json!([])
    });
    assert!(expired, "expired: {h}");
    let (mut c3, _) = connect(hub.addr, "trim-sub3");
    let r = subscribe_since(&mut c3, "brief:y", Some((0, &epoch)));
    assert_eq!(r["recovered"], false);
    let e = p.request(json!({"type": "history", "channel": "chat:nohistory"}), 42);
    assert_eq!(e["code"], "not_found");
}

both_drivers!(
    offsets_and_recovery,
    recovery_under_load_has_no_gap_or_duplicate,
    trimmed_by_size_and_age
);

#[test]
fn a_restart_without_redis_changes_the_epoch() {
    let config = history_config(Driver::IoUring);
    let hub = start(config.clone());
    let (mut c, _) = connect(hub.addr, "ep");
    let e1 = subscribe_since(&mut c, "log:e", None)["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    publish(&mut c, "log:e", 1, 1);
    drop(c);
    hub.shutdown();
    let hub = start(config);
    let (mut c, _) = connect(hub.addr, "ep");
    let r = subscribe_since(&mut c, "log:e", Some((1, &e1)));
    assert_ne!(r["epoch"], e1);
    assert_eq!(
        (r["recovered"].as_bool(), r["offset"].as_u64()),
        (Some(false), Some(0))
    );
}

#[test]
fn history_through_the_server_api() {
    let hub = start(history_config(Driver::IoUring));
    let mut api = hub.api();
    for n in 1..=5 {
        let r = api.post("/api/publish", &json!({"channel": "log:api", "data": n}));
        assert_eq!(r.json(), json!({"offset": n}));
    }
    let h = api.get("/api/history/log:api?since=2&limit=2").json();
    assert_eq!(h["channel"], "log:api");
    assert!(h["epoch"].is_string());
    let offsets = offsets(&h);
    assert_eq!(offsets, vec![3, 4]);
    assert!(
        h["publications"][0].get("from").is_none(),
        "API publications have no `from`"
    );
    assert_eq!(api.get("/api/history/log:api?since=x").status, 400);
    assert_eq!(api.get("/api/history/chat:none").status, 404);
}

#[test]
fn presence_frames_are_not_held_back_by_a_catch_up() {
    let hub = start(history_config(Driver::IoUring));
    let (mut c, _) = connect(hub.addr, "joiner");
    c.send(json!({"id": 1, "type": "subscribe", "channel": "hroom:1"}));
    let frames = c.frames_for(Duration::from_millis(300));
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"subscribed"), "{frames:?}");
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "join" && f["user"] == "joiner"),
        "one's own join on a channel with history: {frames:?}"
    );
}
