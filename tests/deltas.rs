//! Fossil deltas over real sockets (docs/protocol.md, "Deltas"): a subscriber that asks
//! gets a channel's first publication whole and the next ones as deltas it can apply,
//! beside a subscriber that did not ask and gets the publications as published; deltas on
//! a channel with history (whole again after recovery), across instances through Redis,
//! and refusals.

mod common;

use common::cluster::cluster_with;
use common::deltas::{config_with_deltas, table, with_deltas, Applier};
use common::redis::Redis;
use common::*;
use ringhub::config::Driver;
use serde_json::json;

fn deltas_beside_plain(driver: Driver) {
    let hub = start(config_with_deltas(driver));
    let (mut delta_sub, _) = connect(hub.addr, "d");
    let (mut plain_sub, _) = connect(hub.addr, "p");
    let (mut publisher, _) = connect(hub.addr, "pub");
    let r = delta_sub.request(
        json!({"type": "subscribe", "channel": "game:1", "delta": "fossil"}),
        1,
    );
    assert_eq!(r["type"], "subscribed", "{r}");
    plain_sub.subscribe("game:1");
    let mut applier = Applier::default();
    let mut sizes = Vec::new();
    for round in 0..6 {
        let state = table(round);
        publisher.send(json!({"type": "publish", "channel": "game:1", "data": state}));
        let m = delta_sub.recv();
        sizes.push(m["data"].as_str().unwrap().len());
        assert_eq!(applier.take(&m), state, "round {round}");
        let p = plain_sub.recv();
        assert_eq!((p["data"].clone(), p.get("delta")), (state, None), "{p}");
    }
    assert_eq!(applier.deltas, 5, "whole first, then deltas");
    assert!(
        sizes[1..].iter().all(|&s| s * 4 < sizes[0]),
        "deltas are small: {sizes:?}"
    );

    // Subscribing again gets a whole publication next (a client that lost its base).
    let r = delta_sub.request(
        json!({"type": "subscribe", "channel": "game:1", "delta": "fossil"}),
        2,
    );
    assert_eq!(r["type"], "subscribed");
    publisher.send(json!({"type": "publish", "channel": "game:1", "data": table(9)}));
    let m = delta_sub.recv();
    assert_eq!(m["delta"], false, "{m}");
    assert_eq!(applier.take(&m), table(9));
    plain_sub.recv();

    // Where the namespace does not allow deltas, the subscription is a plain one.
    let r = delta_sub.request(
        json!({"type": "subscribe", "channel": "plain:1", "delta": "fossil"}),
        3,
    );
    assert_eq!(r["type"], "subscribed");
    publisher.send(json!({"type": "publish", "channel": "plain:1", "data": table(1)}));
    let m = delta_sub.recv();
    assert_eq!((m["data"].clone(), m.get("delta")), (table(1), None), "{m}");

    // An unknown delta type is refused.
    let r = delta_sub.request(
        json!({"type": "subscribe", "channel": "game:2", "delta": "xdelta"}),
        4,
    );
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("bad_request")),
        "{r}"
    );
    publisher.close();
}

/// On a channel with history: deltas carry offsets; a recovering subscriber gets what it
/// missed as published, then a whole publication, then deltas.
fn deltas_with_history(driver: Driver) {
    let hub = start(config_with_deltas(driver));
    let (mut publisher, _) = connect(hub.addr, "pub");
    let (mut sub, _) = connect(hub.addr, "d");
    let r = sub.request(
        json!({"type": "subscribe", "channel": "gamelog:1", "delta": "fossil"}),
        1,
    );
    let epoch = r["epoch"].as_str().unwrap().to_string();
    let mut applier = Applier::default();
    for round in 1..=3 {
        let r = publisher.request(
            json!({"type": "publish", "channel": "gamelog:1", "data": table(round)}),
            10 + round,
        );
        assert_eq!(r["offset"], round, "{r}");
        let m = sub.recv();
        assert_eq!(
            (applier.take(&m), m["offset"].as_u64()),
            (table(round), Some(round))
        );
    }
    assert_eq!(applier.deltas, 2);
    drop(sub);
    for round in 4..=5 {
        publisher.request(
            json!({"type": "publish", "channel": "gamelog:1", "data": table(round)}),
            10 + round,
        );
    }
    let (mut back, _) = connect(hub.addr, "d");
    let r = back.request(
        json!({"type": "subscribe", "channel": "gamelog:1", "delta": "fossil", "since": {"offset": 3, "epoch": epoch}}),
        2,
    );
    assert_eq!(r["recovered"], true, "{r}");
    for round in 4..=5 {
        let m = back.recv();
        assert_eq!(
            (m["offset"].as_u64(), m["data"].clone()),
            (Some(round), table(round)),
            "recovered as published: {m}"
        );
    }
    let mut applier = Applier::default();
    for round in 6..=7 {
        publisher.request(
            json!({"type": "publish", "channel": "gamelog:1", "data": table(round)}),
            10 + round,
        );
        let m = back.recv();
        assert_eq!(
            (applier.take(&m), m["offset"].as_u64()),
            (table(round), Some(round))
        );
    }
    assert_eq!(applier.deltas, 1, "whole after recovery, then a delta");
}

both_drivers!(deltas_beside_plain, deltas_with_history);

/// Across instances: each instance makes its own deltas from the publications it gets.
#[test]
fn deltas_across_instances() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 2, with_deltas);
    let (mut sub, _) = connect(hubs[1].addr, "far");
    let r = sub.request(
        json!({"type": "subscribe", "channel": "game:x", "delta": "fossil"}),
        1,
    );
    assert_eq!(r["type"], "subscribed");
    let (mut publisher, _) = connect(hubs[0].addr, "near");
    // The subscription reaches the first instance through Redis: publish until it lands.
    let mut applier = Applier::default();
    let take_all = |sub: &mut Client, applier: &mut Applier, ms| {
        let frames = sub.frames_for(std::time::Duration::from_millis(ms));
        frames
            .iter()
            .filter(|m| m["type"] == "message")
            .map(|m| applier.take(m))
            .count()
    };
    assert!(eventually(|| {
        publisher.send(json!({"type": "publish", "channel": "game:x", "data": table(0)}));
        take_all(&mut sub, &mut applier, 100) > 0
    }));
    take_all(&mut sub, &mut applier, 200);
    applier.deltas = 0;
    for round in 1..=4 {
        publisher.send(json!({"type": "publish", "channel": "game:x", "data": table(round)}));
        let m = sub.recv();
        assert_eq!(applier.take(&m), table(round), "{m}");
    }
    assert!(
        applier.deltas >= 3,
        "deltas on the far instance: {}",
        applier.deltas
    );
}
