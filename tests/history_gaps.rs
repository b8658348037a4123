//! Gaps on history channels: an instance that stops hearing Redis for a while (its
//! connections killed, and refused until it may log in again) misses publications that the
//! other instance got acked. Its subscriber stays connected and must get them anyway,
//! exactly once and in order, or be told with `unsubscribed` (`recovery_failed`) when the
//! history lost them.

mod common;

use common::admin::find_metric;
use common::cluster::{cluster_with, eventually_long, scrape};
use common::history::subscribe_since;
use common::redis::Redis;
use common::*;
use ringhub::config::Namespace;
use serde_json::{json, Value};

/// Two instances; the second logs in to Redis as user `b`, whom the test can lock out.
fn two_instances(redis: &Redis) -> Vec<TestHub> {
    let mut r = redis.client();
    let _: () = ::redis::cmd("ACL")
        .arg(&["SETUSER", "b", "on", ">pw", "~*", "&*", "+@all"])
        .query(&mut r)
        .unwrap();
    let url_b = format!("{}?user=b&pass=pw", redis.url());
    cluster_with(redis, 2, |c| {
        let ns = Namespace {
            public: true,
            client_publish: true,
            history_size: 1000,
            ..Namespace::default()
        };
        c.namespaces.insert("log".into(), ns);
        if c.instance_id == "inst-1" {
            c.redis_url = Some(url_b.clone());
        }
    })
}

/// Locks `b` out: its connections are killed and it cannot log in again.
fn lock_out(redis: &Redis, hub: &TestHub) {
    let mut r = redis.client();
    let _: () = ::redis::cmd("ACL")
        .arg(&["SETUSER", "b", "off"])
        .query(&mut r)
        .unwrap();
    let _: i64 = ::redis::cmd("CLIENT")
        .arg(&["KILL", "USER", "b"])
        .query(&mut r)
        .unwrap();
    let down = eventually_long(|| find_metric(&scrape(hub), "ringhub_relay_up") == Some(0.0));
    assert!(down, "the relay notices:\n{}", scrape(hub));
}

fn let_in(redis: &Redis) {
    let _: () = ::redis::cmd("ACL")
        .arg(&["SETUSER", "b", "on"])
        .query(&mut redis.client())
        .unwrap();
}

fn publish(c: &mut Client, n: u64) -> u64 {
    let r = c.request(
        json!({"type": "publish", "channel": "log:x", "data": n}),
        1000 + n,
    );
    r["offset"].as_u64().unwrap_or_else(|| panic!("acked: {r}"))
}

/// The next `message` (or other unsolicited frame) on the channel.
fn next_on_channel(c: &mut Client) -> Value {
    loop {
        let f = c.recv();
        if f["channel"] == "log:x" {
            return f;
        }
    }
}

#[test]
fn a_subscriber_that_stays_gets_what_its_instance_did_not_hear() {
    let Some(redis) = Redis::start() else { return };
    let hubs = two_instances(&redis);
    let (mut sub, _) = connect(hubs[1].addr, "sub");
    subscribe_since(&mut sub, "log:x", None);
    let (mut publisher, _) = connect(hubs[0].addr, "pub");
    for n in 1..=3 {
        assert_eq!(publish(&mut publisher, n), n);
    }
    for n in 1..=3 {
        assert_eq!(next_on_channel(&mut sub)["offset"], n);
    }
    lock_out(&redis, &hubs[1]);
    // Acked by the other instance while this one hears nothing.
    for n in 4..=10 {
        assert_eq!(publish(&mut publisher, n), n);
    }
    let_in(&redis);
    // Once back, 4..=10 arrive in order, each once, and then the live ones.
    for n in 4..=10 {
        let f = next_on_channel(&mut sub);
        assert_eq!(
            (f["type"].clone(), f["offset"].clone()),
            (json!("message"), json!(n)),
            "{f}"
        );
        assert_eq!(f["data"], n);
    }
    let up = eventually_long(|| find_metric(&scrape(&hubs[1]), "ringhub_relay_up") == Some(1.0));
    assert!(up);
    assert_eq!(publish(&mut publisher, 11), 11);
    assert_eq!(next_on_channel(&mut sub)["offset"], 11);
    sub.expect_silence(std::time::Duration::from_millis(200));
    let m = scrape(&hubs[1]);
    assert!(
        find_metric(&m, "ringhub_history_gaps_recovered_total").unwrap_or(0.0) >= 1.0,
        "{m}"
    );
}

#[test]
fn a_subscriber_is_told_when_the_history_lost_what_it_missed() {
    let Some(redis) = Redis::start() else { return };
    let hubs = two_instances(&redis);
    let (mut sub, _) = connect(hubs[1].addr, "sub");
    let epoch = subscribe_since(&mut sub, "log:x", None)["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut publisher, _) = connect(hubs[0].addr, "pub");
    for n in 1..=3 {
        publish(&mut publisher, n);
        assert_eq!(next_on_channel(&mut sub)["offset"], n);
    }
    lock_out(&redis, &hubs[1]);
    // The history is lost (as with a Redis restarted without its data), and the channel
    // starts again in a new epoch while this instance hears nothing.
    let _: i64 = ::redis::cmd("DEL")
        .arg(&["ringhub:history.log:x", "ringhub:history-meta.log:x"])
        .query(&mut redis.client())
        .unwrap();
    for n in 4..=5 {
        assert_eq!(publish(&mut publisher, n), n - 3, "a new sequence");
    }
    let_in(&redis);
    let f = next_on_channel(&mut sub);
    assert_eq!(
        f,
        json!({"type": "unsubscribed", "channel": "log:x", "reason": "recovery_failed"})
    );
    // Resubscribing says what happened and where the channel stands now.
    let r = subscribe_since(&mut sub, "log:x", Some((3, &epoch)));
    assert_eq!(
        (r["recovered"].clone(), r["offset"].clone()),
        (json!(false), json!(2)),
        "{r}"
    );
    assert_ne!(r["epoch"], json!(epoch));
    let lost = find_metric(&scrape(&hubs[1]), "ringhub_history_gaps_lost_total");
    assert!(lost.unwrap_or(0.0) >= 1.0);
}
