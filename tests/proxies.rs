//! The subscribe and publish proxies: real HTTP backends written here that allow, refuse,
//! replace, fail and hang. A slow backend holds up only the connections waiting on it.

mod common;

use std::time::Duration;

use common::backend::{Answer, Backend, Gate};
use common::*;
use ringhub::config::{Driver, Namespace};
use serde_json::{json, Value};

both_drivers!(
    the_subscribe_proxy_allows_or_refuses_what_the_token_does_not,
    the_publish_proxy_accepts_replaces_or_refuses,
);

fn proxied(driver: Driver, subscribe: &Backend, publish: &Backend) -> ringhub::Config {
    let mut c = config(driver);
    c.subscribe_proxy_url = Some(subscribe.url());
    c.publish_proxy_url = Some(publish.url());
    c.rpc_timeout = Duration::from_millis(500);
    let game = Namespace {
        presence: true,
        subscribe_proxy: true,
        publish_proxy: true,
        ..Namespace::default()
    };
    c.namespaces.insert("game".into(), game);
    c
}

fn refuse(message: &str) -> Answer {
    Answer::ok(json!({"error": {"code": "forbidden", "message": message}}))
}

fn subscribe(c: &mut Client, channel: &str, id: u64) -> Value {
    c.request(
        json!({"type": "subscribe", "channel": channel, "data": {"seat": 3}}),
        id,
    )
}

fn the_subscribe_proxy_allows_or_refuses_what_the_token_does_not(driver: Driver) {
    let subscribe_backend = Backend::start(|r| match r["channel"].as_str().unwrap() {
        "game:banned" => refuse("banned from this table"),
        "game:broken" => Answer {
            status: 503,
            body: "{}".into(),
            delay: Duration::ZERO,
        },
        "game:slow" => Answer {
            delay: Duration::from_secs(2),
            ..Answer::ok(json!({}))
        },
        _ => Answer::ok(json!({"info": {"seat": r["data"]["seat"]}})),
    });
    let publish_backend = Backend::start(|_| Answer::ok(json!({})));
    let hub = start(proxied(driver, &subscribe_backend, &publish_backend));
    let (mut c, welcome) = connect(hub.addr, "alice");

    let r = subscribe(&mut c, "game:1", 1);
    assert_eq!(
        r,
        json!({"id": 1, "type": "subscribed", "channel": "game:1"})
    );
    let asked = &subscribe_backend.requests()[0];
    assert_eq!(asked["channel"], "game:1");
    assert_eq!(asked["user"], "alice");
    assert_eq!(asked["conn"], welcome["conn"]);
    assert_eq!(asked["data"], json!({"seat": 3}));
    // The backend's info is the user's presence info on that channel.
    let p = c.request(json!({"type": "presence", "channel": "game:1"}), 2);
    assert_eq!(p["users"][0]["info"], json!({"seat": 3}), "{p}");

    let r = subscribe(&mut c, "game:banned", 3);
    assert_eq!(
        (r["code"].clone(), r["message"].clone()),
        (json!("forbidden"), json!("banned from this table"))
    );
    assert_eq!(subscribe(&mut c, "game:broken", 4)["code"], "unavailable");
    assert_eq!(subscribe(&mut c, "game:slow", 5)["code"], "timeout");
    // A channel the token allows is not asked about.
    let before = subscribe_backend.requests().len();
    c.subscribe("chat:open");
    assert_eq!(subscribe_backend.requests().len(), before);
    // Answers are not kept: a second connection asks again.
    let (mut d, _) = connect(hub.addr, "alice");
    assert_eq!(subscribe(&mut d, "game:1", 6)["type"], "subscribed");
    assert_eq!(subscribe_backend.requests().len(), before + 1);
}

fn the_publish_proxy_accepts_replaces_or_refuses(driver: Driver) {
    let subscribe_backend = Backend::start(|_| Answer::ok(json!({})));
    let publish_backend = Backend::start(|r| match r["data"]["kind"].as_str().unwrap_or("") {
        "move" => Answer::ok(json!({"data": {"kind": "move", "to": r["data"]["to"], "ts": 1234}})),
        "cheat" => refuse("illegal move"),
        _ => Answer::ok(json!({})),
    });
    let hub = start(proxied(driver, &subscribe_backend, &publish_backend));
    let (mut watcher, _) = connect(hub.addr, "watcher");
    let r = subscribe(&mut watcher, "game:7", 1);
    assert_eq!(r["type"], "subscribed", "{r}");
    let (mut player, _) = connect(hub.addr, "player");
    let publish = |c: &mut Client, data: Value, id| {
        c.request(
            json!({"type": "publish", "channel": "game:7", "data": data}),
            id,
        )
    };
    assert_eq!(
        publish(&mut player, json!({"kind": "chat", "text": "gl"}), 1)["type"],
        "ack"
    );
    assert_eq!(
        publish(&mut player, json!({"kind": "move", "to": "e4"}), 2)["type"],
        "ack"
    );
    let r = publish(&mut player, json!({"kind": "cheat"}), 3);
    assert_eq!(
        (r["code"].clone(), r["message"].clone()),
        (json!("forbidden"), json!("illegal move"))
    );
    let seen: Vec<Value> = (0..2).map(|_| watcher.recv()["data"].clone()).collect();
    assert_eq!(
        seen,
        vec![
            json!({"kind": "chat", "text": "gl"}),
            json!({"kind": "move", "to": "e4", "ts": 1234})
        ]
    );
    watcher.expect_silence(Duration::from_millis(100));
    assert_eq!(publish_backend.requests()[0]["user"], "player");
}

#[test]
fn a_hanging_backend_delays_only_the_connections_waiting_on_it() {
    let gate = Gate::default();
    let held = gate.clone();
    let publish_backend = Backend::start(move |_| {
        held.wait();
        Answer::ok(json!({}))
    });
    let subscribe_backend = Backend::start(|_| Answer::ok(json!({})));
    let mut c = proxied(Driver::IoUring, &subscribe_backend, &publish_backend);
    c.rpc_timeout = Duration::from_secs(30);
    let hub = start(c);
    let (mut waiting, _) = connect(hub.addr, "waiting");
    waiting.send(json!({"type": "publish", "channel": "game:1", "data": 1, "id": 1}));
    assert!(eventually(|| publish_backend.requests().len() == 1));
    // Meanwhile everyone else, on the same shards, goes on.
    let (mut listener, _) = connect(hub.addr, "listener");
    listener.subscribe("chat:lobby");
    let (mut talker, _) = connect(hub.addr, "talker");
    for n in 0..50 {
        let r = talker.request(
            json!({"type": "publish", "channel": "chat:lobby", "data": n}),
            n,
        );
        assert_eq!(r["type"], "ack");
        assert_eq!(listener.recv()["data"], n);
    }
    gate.open();
    assert_eq!(waiting.recv(), json!({"id": 1, "type": "ack"}));
}
