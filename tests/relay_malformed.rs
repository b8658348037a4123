//! Garbage from Redis harms nothing: a backend publishing junk on the egress topic, and bad
//! envelopes on a channel topic and on `cluster`, are counted (`ringhub_egress_malformed`,
//! `ringhub_relay_malformed`) and skipped, and the hub keeps delivering to its clients.

mod common;

use std::time::Duration;

use common::admin::find_metric;
use common::cluster::{cluster, relay_subscribed, scrape};
use common::redis::Redis;
use common::*;
use ringhub::protocol::envelope::{encode, Kind};
use serde_json::json;

fn publish(r: &mut ::redis::Connection, topic: &str, msg: &[u8]) {
    let _: i64 = ::redis::cmd("PUBLISH")
        .arg(topic)
        .arg(msg)
        .query(r)
        .unwrap();
}

#[test]
fn garbage_on_egress_and_channel_topics_is_counted_and_harmless() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster(&redis, 2);
    let (mut a, _) = connect(hubs[0].addr, "ga");
    let (mut b, _) = connect(hubs[1].addr, "gb");
    a.subscribe("chat:g");
    b.subscribe("chat:g");
    relay_subscribed(&hubs[0], 1);
    relay_subscribed(&hubs[1], 1);
    let mut r = redis.client();

    let deep = "[".repeat(100_000);
    let egress: [&[u8]; 6] = [
        b"\xff\xfe\x00 not even UTF-8",
        b"{not json",
        deep.as_bytes(),
        br#"{"op":"publish"}"#,
        br#"{"op":"publish","channel":"bad channel!","data":1}"#,
        br#"{"op":"send","user":"","data":1}"#,
    ];
    for msg in egress {
        publish(&mut r, "ringhub:egress", msg);
    }

    let other = "inst-x";
    let good = encode(Kind::Message, other, "", "chat:g", br#"{"type":"message"}"#);
    let channel: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"".to_vec(),
        good[..good.len() / 2].to_vec(),
        encode(Kind::Message, other, "", "chat:g", b"\xff\xfe{}").to_vec(),
        encode(Kind::Message, other, "", "chat:g", b"not json").to_vec(),
        encode(Kind::Message, other, "", "chat:g", b"").to_vec(),
        encode(Kind::BroadcastAll, other, "", "", b"\xc3\x28").to_vec(),
        encode(Kind::Revoke, other, "", "", b"{\"nope\":1}").to_vec(),
        encode(Kind::Subscribe, other, "", "gb", b"\xff").to_vec(),
        encode(Kind::PresenceAnswer, other, "", "1", b"[{").to_vec(),
    ];
    for msg in &channel {
        publish(&mut r, "ringhub:ch.chat:g", msg);
    }
    publish(&mut r, "ringhub:cluster", b"RH1");

    // Delivery goes on: across instances and locally, then through egress.
    let (mut publisher, _) = connect(hubs[0].addr, "gp");
    let p = publisher.request(
        json!({"type": "publish", "channel": "chat:g", "data": 1}),
        5,
    );
    assert_eq!(p["type"], "ack", "{p}");
    let message =
        |data| json!({"type": "message", "channel": "chat:g", "data": data, "from": "gp"});
    assert_eq!(a.recv(), message(1));
    assert_eq!(b.recv(), message(1));
    publish(
        &mut r,
        "ringhub:egress",
        br#"{"op":"publish","channel":"chat:g","data":2}"#,
    );
    for c in [&mut a, &mut b] {
        assert_eq!(
            c.recv(),
            json!({"type": "message", "channel": "chat:g", "data": 2})
        );
        c.expect_silence(Duration::from_millis(100));
    }

    for hub in &hubs {
        let m = scrape(hub);
        let count = |name| find_metric(&m, name).unwrap_or(0.0) as usize;
        assert_eq!(count("ringhub_egress_malformed_total"), egress.len(), "{m}");
        assert_eq!(
            count("ringhub_relay_malformed_total"),
            channel.len() + 1,
            "{m}"
        );
        assert_eq!(find_metric(&m, "ringhub_relay_up"), Some(1.0), "{m}");
    }
}
