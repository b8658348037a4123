//! History with Redis: offsets from one sequence for the whole cluster, recovery across
//! instances under load, a new epoch when the stream is lost, refusals while Redis is away.

mod common;

use std::time::Duration;

use common::cluster::{cluster_with, eventually_long, scrape};
use common::history::{offsets, recover_repeatedly, subscribe_since, with_history, Hammer};
use common::redis::Redis;
use common::*;
use serde_json::json;

#[test]
fn one_sequence_for_the_cluster_and_recovery_across_instances() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 2, with_history);
    let (mut sub_a, _) = connect(hubs[0].addr, "ha");
    let (mut sub_b, _) = connect(hubs[1].addr, "hb");
    let r = subscribe_since(&mut sub_a, "log:x", None);
    let epoch = r["epoch"].as_str().unwrap().to_string();
    assert_eq!(
        subscribe_since(&mut sub_b, "log:x", None)["epoch"],
        epoch,
        "one epoch for the cluster"
    );
    let (mut pa, _) = connect(hubs[0].addr, "pa");
    let (mut pb, _) = connect(hubs[1].addr, "pb");
    let mut acks = Vec::new();
    for n in 0..5 {
        let p = if n % 2 == 0 { &mut pa } else { &mut pb };
        let r = p.request(
            json!({"type": "publish", "channel": "log:x", "data": n}),
            n + 1,
        );
        acks.push(r["offset"].as_u64().expect("ack with offset"));
    }
    assert_eq!(acks, vec![1, 2, 3, 4, 5], "offsets come from one sequence");
    for c in [&mut sub_a, &mut sub_b] {
        for n in 1..=5 {
            assert_eq!(c.recv()["offset"], n);
        }
    }
    // Leave B, miss 6..=8, come back on A.
    drop(sub_b);
    for n in 6..=8 {
        pa.request(
            json!({"type": "publish", "channel": "log:x", "data": n}),
            10 + n,
        );
    }
    let (mut back, _) = connect(hubs[0].addr, "hb");
    let r = subscribe_since(&mut back, "log:x", Some((5, &epoch)));
    assert_eq!(
        (r["recovered"].as_bool(), r["offset"].as_u64()),
        (Some(true), Some(8)),
        "{r}"
    );
    for n in 6..=8 {
        assert_eq!(back.recv()["offset"], n);
    }
    let h = hubs[1].api().get("/api/history/log:x?since=6").json();
    let offsets = offsets(&h);
    assert_eq!(offsets, vec![7, 8]);
    assert_eq!(h["epoch"], epoch);
    let r = hubs[1]
        .api()
        .post("/api/publish", &json!({"channel": "log:x", "data": "api"}));
    assert_eq!(r.json(), json!({"offset": 9}));
    assert_eq!(back.recv()["offset"], 9);
}

#[test]
fn recovery_across_instances_under_load() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 2, with_history);
    let hammer = Hammer::start(hubs[0].addr, "log:busy");
    let addrs = [hubs[0].addr, hubs[1].addr];
    let last = recover_repeatedly(&addrs, "log:busy", 10, Duration::from_millis(100));
    hammer.stop();
    assert!(last > 20, "{last}");
}

#[test]
fn a_lost_stream_changes_the_epoch_and_trimming_holds() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 2, with_history);
    let (mut c, _) = connect(hubs[0].addr, "ep");
    for n in 1..=5 {
        c.request(
            json!({"type": "publish", "channel": "short:t", "data": n}),
            n,
        );
    }
    let h = c.request(json!({"type": "history", "channel": "short:t"}), 10);
    let offsets = offsets(&h);
    assert_eq!(offsets, vec![3, 4, 5], "trimmed to history_size: {h}");
    let epoch = h["epoch"].as_str().unwrap().to_string();
    let (mut late, _) = connect(hubs[1].addr, "late");
    assert_eq!(
        subscribe_since(&mut late, "short:t", Some((1, &epoch)))["recovered"],
        false
    );
    // The stream is lost (deleted by hand): the next publication starts a new epoch.
    let mut r = redis.client();
    let _: i64 = ::redis::cmd("DEL")
        .arg("ringhub:history.short:t")
        .query(&mut r)
        .unwrap();
    c.request(
        json!({"type": "publish", "channel": "short:t", "data": 6}),
        11,
    );
    let (mut again, _) = connect(hubs[1].addr, "again");
    let s = subscribe_since(&mut again, "short:t", Some((5, &epoch)));
    assert_ne!(s["epoch"], epoch, "{s}");
    assert_eq!(s["recovered"], false);
}

#[test]
fn trimmed_by_age_in_redis() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 1, with_history);
    let (mut c, _) = connect(hubs[0].addr, "aging");
    for n in 1..=2 {
        c.request(
            json!({"type": "publish", "channel": "brief:b", "data": n}),
            n,
        );
    }
    let h = c.request(json!({"type": "history", "channel": "brief:b"}), 10);
    assert_eq!(h["publications"].as_array().unwrap().len(), 2, "{h}");
    let epoch = h["epoch"].as_str().unwrap().to_string();
    let mut h = serde_json::Value::Null;
    let expired = eventually(|| {
        h = c.request(json!({"type": "history", "channel": "brief:b"}), 11);
        h["publications"] == json!([])
    });
    assert!(expired, "older than history_ttl: {h}");
    let (mut late, _) = connect(hubs[0].addr, "late");
    assert_eq!(
        subscribe_since(&mut late, "brief:b", Some((0, &epoch)))["recovered"],
        false
    );
}

#[test]
fn history_is_refused_while_redis_is_away() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 1, with_history);
    let (mut c, _) = connect(hubs[0].addr, "away");
    drop(redis);
    assert!(eventually_long(|| common::admin::find_metric(
        &scrape(&hubs[0]),
        "ringhub_relay_up"
    ) == Some(0.0)));
    let r = c.request(json!({"type": "publish", "channel": "log:z", "data": 1}), 1);
    assert_eq!(r["code"], "unavailable", "{r}");
    let r = c.request(json!({"type": "history", "channel": "log:z"}), 2);
    assert_eq!(r["code"], "unavailable", "{r}");
    let r = subscribe_since(&mut c, "log:z", Some((3, "e")));
    assert_eq!(r["recovered"], false);
    assert_eq!(
        hubs[0]
            .api()
            .post("/api/publish", &json!({"channel": "log:z", "data": 1}))
            .status,
        503
    );
}
