//! Fossil deltas in the binary protocol (docs/protocol.md, "Deltas" and §15) over real
//! sockets, with the prost types: `Subscribe.delta = "fossil"` gets a whole publication
//! then deltas (`Message.delta`) that rebuild the published bytes exactly, beside a JSON
//! delta subscriber and a proto subscriber that did not ask; one transcoding per form and
//! publication; recovery on a channel with history; and across instances through Redis.

mod common;

use common::cluster::{cluster_with, relay_subscribed, scrape};
use common::deltas::{config_with_deltas, table, with_deltas, Applier};
use common::proto::{connect_proto, ProtoClient};
use common::redis::Redis;
use common::*;
use ringhub::config::Driver;
use ringhub::protocol::proto::pb::{self, hub_frame::Frame};
use serde_json::json;

/// Round `round`'s table as a text with its own spacing, which must arrive byte for byte.
fn text(round: u64) -> String {
    table(round).to_string().replace(',', ", ")
}

fn publish_json(c: &mut Client, channel: &str, round: u64) {
    let frame = format!(
        r#"{{"type":"publish","channel":"{channel}","id":{round},"data":{}}}"#,
        text(round)
    );
    c.send_text(&frame);
    assert_eq!(c.recv()["type"], "ack");
}

fn subscribe_fossil(
    p: &mut ProtoClient,
    channel: &str,
    since: Option<pb::Since>,
) -> pb::Subscribed {
    match p.subscribe_delta(channel, since, "fossil") {
        Frame::Subscribed(s) => s,
        other => panic!("expected subscribed, got {other:?}"),
    }
}

fn proto_beside_json(driver: Driver) {
    let hub = start(config_with_deltas(driver));
    let (mut delta_sub, _) = connect_proto(hub.addr, "pd");
    let (mut plain_sub, _) = connect_proto(hub.addr, "pq");
    let (mut json_sub, _) = connect(hub.addr, "jd");
    let (mut json_pub, _) = connect(hub.addr, "jp");
    let (mut proto_pub, _) = connect_proto(hub.addr, "pp");
    subscribe_fossil(&mut delta_sub, "game:1", None);
    plain_sub.subscribe("game:1", None);
    let r = json_sub.request(
        json!({"type": "subscribe", "channel": "game:1", "delta": "fossil"}),
        1,
    );
    assert_eq!(r["type"], "subscribed", "{r}");
    let (mut proto_applier, mut json_applier) = (Applier::default(), Applier::default());
    let mut sizes = Vec::new();
    for round in 0..6 {
        // Publishers of both encodings, in turn.
        if round % 2 == 0 {
            publish_json(&mut json_pub, "game:1", round);
        } else {
            let ack = proto_pub.publish(round, "game:1", text(round).as_bytes());
            assert!(matches!(ack, Frame::Ack(_)), "{ack:?}");
        }
        let m = delta_sub.recv_message();
        sizes.push(m.data.len());
        assert_eq!(m.delta, Some(round > 0), "whole first, then deltas: {m:?}");
        assert_eq!(m.channel, "game:1");
        assert_eq!(
            m.from_user.as_deref(),
            Some(if round % 2 == 0 { "jp" } else { "pp" })
        );
        let rebuilt = proto_applier.take_proto(&m);
        assert_eq!(
            String::from_utf8(rebuilt).unwrap(),
            text(round),
            "round {round}"
        );
        let p = plain_sub.recv_message();
        assert_eq!((p.data, p.delta), (text(round).into_bytes(), None));
        assert_eq!(json_applier.take(&json_sub.recv()), table(round));
        assert_eq!(json_applier.base.as_deref(), Some(text(round).as_bytes()));
    }
    assert_eq!((proto_applier.deltas, json_applier.deltas), (5, 5));
    assert!(
        sizes[1..].iter().all(|&s| s * 4 < sizes[0]),
        "deltas are small: {sizes:?}"
    );

    // Subscribing again gets a whole publication next (a client that lost its base).
    subscribe_fossil(&mut delta_sub, "game:1", None);
    publish_json(&mut json_pub, "game:1", 9);
    let m = delta_sub.recv_message();
    assert_eq!((m.delta, m.data), (Some(false), text(9).into_bytes()));

    // Where the namespace does not allow deltas, the subscription is a plain one.
    subscribe_fossil(&mut delta_sub, "plain:1", None);
    publish_json(&mut json_pub, "plain:1", 1);
    let m = delta_sub.recv_message();
    assert_eq!((m.delta, m.data), (None, text(1).into_bytes()));

    // An unknown delta type is refused, as in JSON.
    let Frame::Error(e) = delta_sub.subscribe_delta("game:2", None, "xdelta") else {
        panic!("an error")
    };
    assert_eq!(e.code, "bad_request", "{e:?}");
}

fn metric(hub: &TestHub, name: &str) -> f64 {
    common::admin::find_metric(&scrape(hub), name).unwrap_or(0.0)
}

/// On one shard, three proto delta subscribers: each publication is transcoded once (its
/// whole form first, its delta after), not once per subscriber.
fn one_transcoding_per_form(driver: Driver) {
    let mut c = config_with_deltas(driver);
    c.shards = 1;
    let hub = start(c);
    let mut subs: Vec<(ProtoClient, Applier)> = (0..3)
        .map(|i| {
            (
                connect_proto(hub.addr, &format!("pd{i}")).0,
                Applier::default(),
            )
        })
        .collect();
    for (s, _) in &mut subs {
        subscribe_fossil(s, "game:once", None);
    }
    let (mut publisher, _) = connect(hub.addr, "jp");
    for round in 0..4 {
        let (transcodes, deltas) = (
            metric(&hub, "ringhub_transcodes_total"),
            metric(&hub, "ringhub_delta_deliveries_total"),
        );
        publish_json(&mut publisher, "game:once", round);
        for (s, applier) in &mut subs {
            let m = s.recv_message();
            assert_eq!(applier.take_proto(&m), text(round).into_bytes());
        }
        assert_eq!(
            metric(&hub, "ringhub_transcodes_total") - transcodes,
            1.0,
            "round {round}: three proto subscribers, one transcoding"
        );
        let sent = metric(&hub, "ringhub_delta_deliveries_total") - deltas;
        assert_eq!(sent, if round == 0 { 0.0 } else { 3.0 }, "round {round}");
    }
}

/// On a channel with history: a recovering proto subscriber gets what it missed as
/// published (no `delta`), then a whole publication, then deltas, each with its offset.
fn recovery(driver: Driver) {
    let hub = start(config_with_deltas(driver));
    let (mut publisher, _) = connect(hub.addr, "jp");
    let (mut sub, _) = connect_proto(hub.addr, "pd");
    let epoch = subscribe_fossil(&mut sub, "gamelog:1", None).epoch.unwrap();
    for round in 1..=2 {
        publish_json(&mut publisher, "gamelog:1", round);
        assert_eq!(sub.recv_message().offset, Some(round));
    }
    drop(sub);
    for round in 3..=4 {
        publish_json(&mut publisher, "gamelog:1", round);
    }
    let (mut back, _) = connect_proto(hub.addr, "pd");
    let since = pb::Since { offset: 2, epoch };
    assert_eq!(
        subscribe_fossil(&mut back, "gamelog:1", Some(since)).recovered,
        Some(true)
    );
    for round in 3..=4 {
        let m = back.recv_message();
        let got = (m.offset, m.delta, m.data);
        assert_eq!(
            got,
            (Some(round), None, text(round).into_bytes()),
            "as published"
        );
    }
    let mut applier = Applier::default();
    for round in 5..=7 {
        publish_json(&mut publisher, "gamelog:1", round);
        let m = back.recv_message();
        assert_eq!((m.offset, m.delta), (Some(round), Some(round > 5)));
        assert_eq!(applier.take_proto(&m), text(round).into_bytes());
    }
}

both_drivers!(proto_beside_json, one_transcoding_per_form, recovery);

/// Across instances: the far instance makes its own deltas from the publications Redis
/// brings, for its proto subscriber as for its JSON one.
#[test]
fn across_instances() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 2, with_deltas);
    let (mut proto_sub, _) = connect_proto(hubs[1].addr, "far-p");
    subscribe_fossil(&mut proto_sub, "game:x", None);
    let (mut json_sub, _) = connect(hubs[1].addr, "far-j");
    let r = json_sub.request(
        json!({"type": "subscribe", "channel": "game:x", "delta": "fossil"}),
        1,
    );
    assert_eq!(r["type"], "subscribed", "{r}");
    relay_subscribed(&hubs[1], 1);
    let (mut publisher, _) = connect(hubs[0].addr, "near");
    let (mut proto_applier, mut json_applier) = (Applier::default(), Applier::default());
    for round in 0..5 {
        publish_json(&mut publisher, "game:x", round);
        let m = proto_sub.recv_message();
        assert_eq!(m.delta, Some(round > 0), "{m:?}");
        assert_eq!(proto_applier.take_proto(&m), text(round).into_bytes());
        assert_eq!(json_applier.take(&json_sub.recv()), table(round));
    }
    assert_eq!((proto_applier.deltas, json_applier.deltas), (4, 4));
}
