//! Channels and delivery: cross-shard fan-out, per-publisher order, direct messages,
//! slow consumers, permissions.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use ringhub::config::Driver;
use serde_json::json;

both_drivers!(
    publication_reaches_subscribers_on_every_shard,
    per_publisher_order_holds_over_many_messages,
    data_is_relayed_byte_for_byte,
    direct_messages_reach_every_connection_of_a_user,
    slow_consumer_is_closed_4009_and_others_unharmed,
    permissions_and_channel_names,
    unsubscribe_and_disconnect_stop_delivery,
    subscription_limit,
);

fn publication_reaches_subscribers_on_every_shard(driver: Driver) {
    let hub = start_default(driver);
    let mut subs = Vec::new();
    let mut shards = HashSet::new();
    for i in 0..40 {
        let (mut c, w) = connect(hub.addr, &format!("fan-{i}"));
        shards.insert(w["shard"].as_u64().unwrap());
        c.subscribe("table:7");
        subs.push(c);
    }
    assert_eq!(shards.len(), 4, "subscribers spread over all shards");
    let (mut publisher, _) = connect(hub.addr, "dealer");
    let ack = publisher.request(
        json!({"type": "publish", "channel": "table:7", "data": {"card": "A♠"}}),
        1,
    );
    assert_eq!(ack["type"], "ack", "{ack}");
    for c in &mut subs {
        let m = c.recv();
        assert_eq!(
            m,
            json!({"type": "message", "channel": "table:7", "data": {"card": "A♠"}, "from": "dealer"})
        );
    }
    // a channel nobody subscribed to: acknowledged, delivered to no one
    let ack = publisher.request(
        json!({"type": "publish", "channel": "table:8", "data": 1}),
        2,
    );
    assert_eq!(ack["type"], "ack");
    subs[0].expect_silence(Duration::from_millis(100));
}

fn per_publisher_order_holds_over_many_messages(driver: Driver) {
    let hub = start_default(driver);
    let mut subs: Vec<_> = (0..8)
        .map(|i| {
            let (mut c, _) = connect(hub.addr, &format!("reader-{i}"));
            c.subscribe("chat:order");
            c
        })
        .collect();
    let mut publishers: Vec<_> = (0..3)
        .map(|i| connect(hub.addr, &format!("writer-{i}")).0)
        .collect();
    const N: u64 = 1200;
    for n in 0..N {
        for (p, c) in publishers.iter_mut().enumerate() {
            c.send(json!({"type": "publish", "channel": "chat:order", "data": {"p": p, "n": n}}));
        }
    }
    for c in &mut subs {
        let mut next = [0u64; 3];
        for _ in 0..N * 3 {
            let m = c.recv();
            let p = m["data"]["p"].as_u64().unwrap() as usize;
            assert_eq!(
                m["data"]["n"].as_u64().unwrap(),
                next[p],
                "publisher {p} out of order"
            );
            assert_eq!(m["from"], format!("writer-{p}"));
            next[p] += 1;
        }
        assert_eq!(next, [N; 3]);
    }
}

fn data_is_relayed_byte_for_byte(driver: Driver) {
    let hub = start_default(driver);
    let (mut sub, _) = connect(hub.addr, "bytes-reader");
    sub.subscribe("chat:raw");
    let (mut publisher, _) = connect(hub.addr, "bytes-writer");
    let data = r#"{ "z" : 1.0e3 ,"a":[ "\u00e9", null ],"s":"tab\there" }"#;
    publisher.send_text(&format!(
        r#"{{"type":"publish","channel":"chat:raw","data":{data}}}"#
    ));
    let raw = match sub.ws.read().unwrap() {
        tungstenite::Message::Text(t) => t.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        raw,
        format!(r#"{{"type":"message","channel":"chat:raw","data":{data},"from":"bytes-writer"}}"#)
    );
}

fn direct_messages_reach_every_connection_of_a_user(driver: Driver) {
    let hub = start_default(driver);
    let mut targets: Vec<_> = (0..3).map(|_| connect(hub.addr, "target").0).collect();
    let (mut other, _) = connect(hub.addr, "bystander");
    // senders on (probably) every shard
    for i in 0..8 {
        let (mut sender, _) = connect(hub.addr, &format!("sender-{i}"));
        let ack = sender.request(
            json!({"type": "send", "user": "target", "data": {"i": i}}),
            9,
        );
        assert_eq!(ack["type"], "ack");
        for t in &mut targets {
            assert_eq!(
                t.recv(),
                json!({"type": "direct", "data": {"i": i}, "from": format!("sender-{i}")})
            );
        }
    }
    other.expect_silence(Duration::from_millis(100));
    let err = other.request(json!({"type": "send", "data": 1}), 3);
    assert_eq!(err["code"], "bad_request");
}

fn slow_consumer_is_closed_4009_and_others_unharmed(driver: Driver) {
    let mut config = config(driver);
    config.send_queue_bytes = 256 * 1024;
    // The close frame waits behind a full socket until the client reads: give it time.
    config.close_timeout = Duration::from_secs(10);
    let hub = start(config);
    let (mut slow, _) = connect(hub.addr, "slow");
    slow.subscribe("chat:flood");
    let (mut fast, _) = connect(hub.addr, "fast");
    fast.subscribe("chat:flood");
    let (mut publisher, _) = connect(hub.addr, "flooder");
    let blob = "x".repeat(8000);
    // 16 MB in all, more than the kernel buffers of the never-reading client hold; the
    // reading client keeps up (in steps of 200 KB) and must get every message, in order.
    const N: usize = 2000;
    const STEP: usize = 25;
    for start in (0..N).step_by(STEP) {
        for n in start..start + STEP {
            publisher.send(
                json!({"type": "publish", "channel": "chat:flood", "data": {"n": n, "blob": blob}}),
            );
        }
        for n in start..start + STEP {
            assert_eq!(fast.recv()["data"]["n"], n);
        }
    }
    let (_, code) = slow.recv_until_close();
    assert_eq!(code, 4009);
    assert_eq!(fast.request(json!({"type": "ping"}), 1)["type"], "pong");
    let metrics = hub.api().without_key().get("/metrics").body;
    let closes = common::admin::metric(&metrics, "ringhub_slow_consumer_closes_total");
    assert_eq!(closes, 1.0, "the 4009 is counted");
}

fn permissions_and_channel_names(driver: Driver) {
    let hub = start_default(driver);
    let (mut c, _) = connect_token(
        hub.addr,
        &token_with("perm", &["table:1", "lobby"], &["table:1"], 600),
    );
    let r = |c: &mut Client, v: serde_json::Value| c.request(v, 1);
    assert_eq!(
        r(&mut c, json!({"type": "subscribe", "channel": "table:1"}))["type"],
        "subscribed"
    );
    assert_eq!(
        r(&mut c, json!({"type": "subscribe", "channel": "table:2"}))["code"],
        "forbidden"
    );
    assert_eq!(
        r(&mut c, json!({"type": "subscribe", "channel": "chat:any"}))["type"],
        "subscribed",
        "public namespace"
    );
    assert_eq!(
        r(&mut c, json!({"type": "subscribe", "channel": "#perm"}))["type"],
        "subscribed",
        "own personal channel"
    );
    assert_eq!(
        r(&mut c, json!({"type": "subscribe", "channel": "#other"}))["code"],
        "forbidden"
    );
    assert_eq!(
        r(&mut c, json!({"type": "subscribe", "channel": "bad name"}))["code"],
        "bad_request"
    );
    assert_eq!(
        r(
            &mut c,
            json!({"type": "subscribe", "channel": "x".repeat(256)})
        )["code"],
        "bad_request"
    );
    assert_eq!(
        r(&mut c, json!({"type": "subscribe"}))["code"],
        "bad_request"
    );
    assert_eq!(
        r(
            &mut c,
            json!({"type": "publish", "channel": "table:1", "data": 1})
        )["type"],
        "ack"
    );
    assert_eq!(
        r(
            &mut c,
            json!({"type": "publish", "channel": "table:2", "data": 1})
        )["code"],
        "forbidden"
    );
    // `lobby` is in the default namespace, where clients may not publish
    assert_eq!(
        r(&mut c, json!({"type": "subscribe", "channel": "lobby"}))["type"],
        "subscribed"
    );
    assert_eq!(
        r(
            &mut c,
            json!({"type": "publish", "channel": "lobby", "data": 1})
        )["code"],
        "forbidden"
    );
    assert_eq!(
        r(
            &mut c,
            json!({"type": "publish", "channel": "chat:any", "data": 1})
        )["type"],
        "ack",
        "public + client_publish"
    );
    assert_eq!(
        r(&mut c, json!({"type": "publish", "channel": "table:1"}))["code"],
        "bad_request",
        "no data"
    );
}

fn unsubscribe_and_disconnect_stop_delivery(driver: Driver) {
    let hub = start_default(driver);
    let (mut a, _) = connect(hub.addr, "unsub-a");
    let (mut b, _) = connect(hub.addr, "unsub-b");
    a.subscribe("chat:u");
    b.subscribe("chat:u");
    assert_eq!(
        a.request(json!({"type": "unsubscribe", "channel": "chat:u"}), 2)["type"],
        "unsubscribed"
    );
    let (mut p, _) = connect(hub.addr, "unsub-p");
    p.send(json!({"type": "publish", "channel": "chat:u", "data": 1}));
    assert_eq!(b.recv()["data"], 1);
    a.expect_silence(Duration::from_millis(100));
    b.close();
    // once the last subscriber is gone, no shard is interested any more
    assert!(eventually(|| hub.hub().shared().interested("chat:u") == 0));
}

fn subscription_limit(driver: Driver) {
    let mut config = config(driver);
    config.max_subscriptions_per_connection = 3;
    let hub = start(config);
    let (mut c, _) = connect(hub.addr, "limited");
    for i in 0..3 {
        c.subscribe(&format!("chat:{i}"));
    }
    c.subscribe("chat:0"); // already subscribed: not counted twice
    let r = c.request(json!({"type": "subscribe", "channel": "chat:3"}), 5);
    assert_eq!(r["code"], "limit_exceeded");
}
