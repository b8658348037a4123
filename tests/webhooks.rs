//! Webhooks (docs/webhooks.md) against a real HTTP receiver started by the test: signed
//! events with unique ids, retries after 5xx with the same id, no retry after a 4xx, the
//! dead letter in a real Redis, and a receiver that hangs while clients carry on.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::admin::find_metric;
use common::backend::{Answer, Backend, Gate, Raw};
use common::cluster::cluster_with;
use common::redis::Redis;
use common::*;
use ringhub::config::{Driver, EventKind, Webhook};
use ringhub::Config;
use serde_json::{json, Value};

const HOOK_SECRET: &str = "webhook-test-secret";

fn answer(status: u16) -> Answer {
    Answer {
        status,
        body: "{}".into(),
        delay: Duration::ZERO,
    }
}

fn hook_url(receiver: &Backend) -> String {
    format!("http://{}/hooks", receiver.addr)
}

/// A hub posting `events` to `receiver`, with short retry intervals; `chat:*` publications
/// are webhook events.
fn config_for(receiver: &Backend, events: &[EventKind]) -> Config {
    let mut config = config(Driver::Epoll);
    config.webhooks = vec![Webhook {
        url: hook_url(receiver),
        events: events.to_vec(),
        secret: Some(HOOK_SECRET.into()),
    }];
    config.webhook_backoff = Duration::from_millis(5);
    config.webhook_backoff_max = Duration::from_millis(20);
    config.namespaces.get_mut("chat").unwrap().webhook = true;
    config
}

fn body(raw: &Raw) -> Value {
    serde_json::from_slice(&raw.body).unwrap()
}

fn of_type(receiver: &Backend, kind: &str) -> Vec<Raw> {
    let raws = receiver.raw_requests();
    raws.into_iter()
        .filter(|r| body(r)["type"] == kind)
        .collect()
}

fn hook_metric(hub: &TestHub, name: &str, receiver: &Backend) -> f64 {
    let text = hub.api().without_key().get("/metrics").body;
    let series = format!("{name}{{endpoint=\"{}\"}}", hook_url(receiver));
    find_metric(&text, &series).unwrap_or(-1.0)
}

/// What a receiver checks: the signature over the raw body, and the id in header and body.
fn check_signed(raw: &Raw) {
    let signature = raw.header("x-ringhub-signature").expect("signed");
    let now = ringhub::auth::unix_now();
    assert!(
        ringhub::auth::sign::verify(HOOK_SECRET.as_bytes(), &raw.body, signature, now, 300),
        "signature {signature:?} over {:?}",
        String::from_utf8_lossy(&raw.body)
    );
    assert!(!ringhub::auth::sign::verify(
        b"another secret",
        &raw.body,
        signature,
        now,
        300
    ));
    let event = body(raw);
    let id = event["id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "{event}");
    assert_eq!(raw.header("x-ringhub-event-id"), Some(id));
    assert_eq!(raw.header("x-ringhub-event"), event["type"].as_str());
    assert_eq!(raw.header("content-type"), Some("application/json"));
    let ts = event["ts"].as_u64().unwrap();
    assert!(ts.abs_diff(now * 1000) < 300_000, "{event}");
}

#[test]
fn events_are_signed_json_with_unique_ids() {
    let receiver = Backend::start(|_| answer(200));
    let events = [
        EventKind::Session,
        EventKind::Presence,
        EventKind::Publication,
    ];
    let hub = start(config_for(&receiver, &events));
    let (mut alice, welcome) = connect(hub.addr, "alice");
    alice.subscribe("room:1");
    let r = alice.request(
        json!({"type": "publish", "channel": "chat:1", "data": {"n": 1}}),
        1,
    );
    assert_eq!(r["type"], "ack", "{r}");
    // Not a webhook namespace.
    let r = alice.request(
        json!({"type": "publish", "channel": "table:1", "data": 2}),
        2,
    );
    assert_eq!(r["type"], "ack", "{r}");
    let r = hub
        .api()
        .post("/api/publish", &json!({"channel": "chat:2", "data": [3]}));
    assert_eq!(r.status, 200, "{}", r.body);
    alice.close();

    let kinds = [
        "session.started",
        "presence.join",
        "presence.leave",
        "session.ended",
    ];
    assert!(
        eventually(|| kinds.iter().all(|k| of_type(&receiver, k).len() == 1)
            && of_type(&receiver, "publication").len() == 2),
        "{:?}",
        receiver.requests()
    );
    let raws = receiver.raw_requests();
    for raw in &raws {
        check_signed(raw);
        assert_eq!(raw.header("x-ringhub-attempt"), Some("1"));
    }
    let ids: HashSet<String> = raws.iter().map(|r| body(r)["id"].to_string()).collect();
    assert_eq!(ids.len(), raws.len(), "every event has its own id");

    let conn = welcome["conn"].as_str().unwrap();
    let started = body(&of_type(&receiver, "session.started")[0]);
    assert_eq!(started["data"]["user"], "alice", "{started}");
    assert_eq!(started["data"]["conn"], conn, "{started}");
    let ended = body(&of_type(&receiver, "session.ended")[0]);
    assert_eq!(ended["data"]["code"], 1000, "{ended}");
    assert!(ended["data"]["duration_ms"].is_u64(), "{ended}");
    let join = body(&of_type(&receiver, "presence.join")[0]);
    assert_eq!(join["data"]["channel"], "room:1", "{join}");
    assert_eq!(join["data"]["user"], "alice", "{join}");
    let publications: Vec<Value> = of_type(&receiver, "publication").iter().map(body).collect();
    assert!(
        publications
            .iter()
            .any(|p| p["data"] == json!({"channel": "chat:1", "data": {"n": 1}, "from": "alice"})),
        "{publications:?}"
    );
    assert!(
        publications
            .iter()
            .any(|p| p["data"] == json!({"channel": "chat:2", "data": [3], "from": null})),
        "{publications:?}"
    );
}

#[test]
fn a_failing_receiver_gets_the_event_again_with_the_same_id() {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let receiver = Backend::start(move |_| match n.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => answer(500),
        _ => answer(200),
    });
    let hub = start(config_for(&receiver, &[EventKind::Session]));
    let (_alice, _) = connect(hub.addr, "alice");

    assert!(eventually(|| hook_metric(
        &hub,
        "ringhub_webhook_delivered_total",
        &receiver
    ) == 1.0));
    let raws = receiver.raw_requests();
    assert_eq!(raws.len(), 3, "two 500s, then the 200");
    let first = body(&raws[0]);
    for (i, raw) in raws.iter().enumerate() {
        check_signed(raw);
        assert_eq!(body(raw), first, "the same event, byte for byte");
        assert_eq!(raw.header("x-ringhub-attempt"), Some(&*(i + 1).to_string()));
    }
    assert_eq!(
        hook_metric(&hub, "ringhub_webhook_retries_total", &receiver),
        2.0
    );
    assert_eq!(
        hook_metric(&hub, "ringhub_webhook_failed_total", &receiver),
        0.0
    );
}

#[test]
fn a_refused_event_is_not_retried() {
    let receiver = Backend::start(|_| answer(422));
    let hub = start(config_for(&receiver, &[EventKind::Session]));
    let (_alice, _) = connect(hub.addr, "alice");

    assert!(eventually(|| hook_metric(
        &hub,
        "ringhub_webhook_rejected_total",
        &receiver
    ) == 1.0));
    assert_eq!(receiver.raw_requests().len(), 1);
    assert_eq!(
        hook_metric(&hub, "ringhub_webhook_retries_total", &receiver),
        0.0
    );
}

#[test]
fn an_event_given_up_goes_to_the_dead_letter_stream() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let receiver = Backend::start(|_| answer(503));
    let mut config = config_for(&receiver, &[EventKind::Session]);
    config.redis_url = Some(redis.url());
    config.webhook_attempts = 3;
    let hub = start(config);
    let (_alice, _) = connect(hub.addr, "alice");

    let mut db = redis.client();
    let mut entries: Vec<(String, Vec<(String, String)>)> = Vec::new();
    assert!(eventually(|| {
        entries = ::redis::cmd("XRANGE")
            .arg("ringhub:webhooks-dead")
            .arg("-")
            .arg("+")
            .query(&mut db)
            .unwrap();
        !entries.is_empty()
    }));
    assert_eq!(entries.len(), 1, "{entries:?}");
    let field = |name: &str| {
        let fields = &entries[0].1;
        let found = fields.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let raws = receiver.raw_requests();
    assert_eq!(raws.len(), 3, "every attempt was made");
    let posted = body(&raws[0]);
    assert_eq!(field("id"), posted["id"].as_str().unwrap());
    assert_eq!(field("type"), "session.started");
    assert_eq!(field("endpoint"), hook_url(&receiver));
    assert_eq!(field("attempts"), "3");
    assert_eq!(field("reason"), "HTTP 503");
    let dead: Value = serde_json::from_str(&field("body")).unwrap();
    assert_eq!(dead, posted, "the event as it was posted");
    assert_eq!(
        hook_metric(&hub, "ringhub_webhook_failed_total", &receiver),
        1.0
    );
    assert_eq!(
        hook_metric(&hub, "ringhub_webhook_dead_lettered_total", &receiver),
        1.0
    );
}

#[test]
fn a_hanging_receiver_does_not_hold_up_clients() {
    let gate = Gate::default();
    let g = gate.clone();
    let receiver = Backend::start(move |_| {
        g.wait();
        answer(200)
    });
    let mut config = config_for(&receiver, &[EventKind::Publication]);
    config.webhook_timeout = Duration::from_secs(60);
    config.webhook_max_in_flight = 2;
    config.webhook_queue = 4;
    let hub = start(config);
    let (mut alice, _) = connect(hub.addr, "alice");
    let (mut bob, _) = connect(hub.addr, "bob");
    alice.subscribe("chat:1");

    let messages = 200;
    for i in 0..messages {
        let r = bob.request(
            json!({"type": "publish", "channel": "chat:1", "data": i}),
            i + 1,
        );
        assert_eq!(r["type"], "ack", "{r}");
    }
    for i in 0..messages {
        let m = alice.recv();
        assert_eq!(m["type"], "message", "{m}");
        assert_eq!(m["data"], i, "{m}");
    }
    // Every message went through while the receiver still held its first requests.
    assert_eq!(receiver.answered(), 0);
    assert!(eventually(|| receiver.raw_requests().len() == 2));
    assert!(hook_metric(&hub, "ringhub_webhook_dropped_total", &receiver) >= 1.0);
    gate.open();
    assert!(eventually(|| hook_metric(
        &hub,
        "ringhub_webhook_delivered_total",
        &receiver
    ) >= 2.0));
}

#[test]
fn breaker_transitions_are_events() {
    let receiver = Backend::start(|_| answer(200));
    let backend = Backend::start(|_| answer(503));
    let mut config = config_for(&receiver, &[EventKind::Breaker]);
    config.rpc_url = Some(backend.url());
    config.rpc_breaker_failures = 1;
    let hub = start(config);
    let (mut alice, _) = connect(hub.addr, "alice");
    let r = alice.request(json!({"type": "rpc", "method": "m"}), 1);
    assert_eq!(r["code"], "unavailable", "{r}");

    assert!(eventually(|| !of_type(&receiver, "rpc.breaker").is_empty()));
    let event = body(&of_type(&receiver, "rpc.breaker")[0]);
    assert_eq!(
        event["data"],
        json!({"backend": backend.url(), "state": "open"}),
        "{event}"
    );
    check_signed(&receiver.raw_requests()[0]);
}

#[test]
fn with_redis_a_join_is_reported_once_for_the_cluster() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let receiver = Backend::start(|_| answer(200));
    let hubs = cluster_with(&redis, 2, |c| {
        c.webhooks = vec![Webhook {
            url: hook_url(&receiver),
            events: vec![EventKind::Presence],
            secret: None,
        }];
        // One delivery at a time: each instance's events arrive in the order they happened.
        c.webhook_max_in_flight = 1;
    });
    let joins = |user: &str| -> Vec<Value> {
        let all = of_type(&receiver, "presence.join");
        let bodies = all.iter().map(body);
        bodies.filter(|b| b["data"]["user"] == user).collect()
    };
    let (mut alice_0, _) = connect(hubs[0].addr, "alice");
    alice_0.subscribe("room:1");
    assert!(eventually(|| joins("alice").len() == 1));
    assert_eq!(joins("alice")[0]["instance"], "inst-0");

    // Alice's second instance announces nothing; bob's join, decided after it by the same
    // relay and delivered after it, shows that nothing was sent for her.
    let (mut alice_1, _) = connect(hubs[1].addr, "alice");
    alice_1.subscribe("room:1");
    let (mut bob, _) = connect(hubs[1].addr, "bob");
    bob.subscribe("room:1");
    assert!(eventually(|| joins("bob").len() == 1));
    assert_eq!(joins("bob")[0]["instance"], "inst-1");
    assert_eq!(joins("alice").len(), 1, "{:?}", receiver.requests());
    assert!(receiver.raw_requests()[0]
        .header("x-ringhub-signature")
        .is_none());
}
