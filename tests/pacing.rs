//! Paced writes (`write_interval`, docs/protocol.md): a connection written less than an
//! interval ago gets what comes for it at the end of that interval, in one write; a quiet
//! one, and replies to what a connection sends, are written at once; nothing waiting is
//! lost when the connection is closed.
//!
//! The interval here is long (400 ms) so that what is held back is told apart from what is
//! not by far more than this machine's scheduling noise.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringhub::config::Driver;
use serde_json::json;

both_drivers!(
    a_busy_connection_waits_for_its_interval_but_replies_do_not,
    frames_waiting_for_the_interval_go_out_before_a_close,
    no_interval_writes_at_once,
);

const INTERVAL: Duration = Duration::from_millis(400);

fn paced_hub(driver: Driver, interval: Duration) -> TestHub {
    let mut c = config(driver);
    c.write_interval = interval;
    start(c)
}

fn publish(publisher: &mut Client, n: u64) -> serde_json::Value {
    publisher.request(
        json!({"type": "publish", "channel": "chat:pace", "data": n}),
        n,
    )
}

/// A subscriber that has been quiet for more than an interval, and a publisher.
fn quiet_pair(hub: &TestHub) -> (Client, Client) {
    let (mut sub, _) = connect(hub.addr, "pace-sub");
    sub.subscribe("chat:pace");
    let (publisher, _) = connect(hub.addr, "pace-pub");
    std::thread::sleep(INTERVAL + Duration::from_millis(100));
    (sub, publisher)
}

fn a_busy_connection_waits_for_its_interval_but_replies_do_not(driver: Driver) {
    let hub = paced_hub(driver, INTERVAL);
    let (mut sub, mut publisher) = quiet_pair(&hub);

    // Quiet for an interval: the first publication is written at once.
    assert_eq!(publish(&mut publisher, 1)["type"], "ack");
    assert_eq!(sub.recv()["data"], 1);
    let first = Instant::now();

    // Written just now: the next two wait for the rest of the interval, and come together.
    // The publisher's acknowledgements are replies, and are not held back.
    assert_eq!(publish(&mut publisher, 2)["type"], "ack");
    assert_eq!(publish(&mut publisher, 3)["type"], "ack");
    let acked = first.elapsed();
    assert_eq!(sub.recv()["data"], 2);
    let second = first.elapsed();
    assert_eq!(sub.recv()["data"], 3);
    assert!(
        second >= INTERVAL - Duration::from_millis(100),
        "the second publication came {second:?} after the first: not paced"
    );
    assert!(
        acked < second,
        "the publisher's acks ({acked:?}) waited for the subscriber's interval ({second:?})"
    );

    // A request of the subscriber's own is answered at once, and takes what waits with it.
    let before = Instant::now();
    assert_eq!(publish(&mut publisher, 4)["type"], "ack");
    // The publication crosses to the subscriber's shard first (the ack does not wait for it).
    std::thread::sleep(Duration::from_millis(100));
    sub.send(json!({"type": "ping", "id": 9}));
    let m = sub.recv();
    assert_eq!(m["data"], 4, "{m}");
    assert_eq!(sub.recv()["type"], "pong");
    assert!(
        before.elapsed() < INTERVAL - Duration::from_millis(100),
        "the reply waited for the interval: {:?}",
        before.elapsed()
    );
}

fn frames_waiting_for_the_interval_go_out_before_a_close(driver: Driver) {
    let hub = paced_hub(driver, INTERVAL);
    let (mut sub, mut publisher) = quiet_pair(&hub);
    assert_eq!(publish(&mut publisher, 1)["type"], "ack");
    assert_eq!(sub.recv()["data"], 1);
    // This one waits for the interval; the disconnect comes while it does.
    assert_eq!(publish(&mut publisher, 2)["type"], "ack");
    let r = hub.api().post(
        "/api/disconnect",
        &json!({"user": "pace-sub", "reason": "bye"}),
    );
    assert_eq!(r.status, 200);
    let (frames, code) = sub.recv_until_close();
    assert_eq!(code, 4004);
    let data: Vec<_> = frames.iter().map(|f| f["data"].clone()).collect();
    assert_eq!(data, vec![json!(2)], "{frames:?}");
    // The publisher was not harmed.
    assert_eq!(publish(&mut publisher, 3)["type"], "ack");
}

fn no_interval_writes_at_once(driver: Driver) {
    let hub = paced_hub(driver, Duration::ZERO);
    let (mut sub, mut publisher) = quiet_pair(&hub);
    assert_eq!(publish(&mut publisher, 1)["type"], "ack");
    assert_eq!(sub.recv()["data"], 1);
    let first = Instant::now();
    assert_eq!(publish(&mut publisher, 2)["type"], "ack");
    assert_eq!(sub.recv()["data"], 2);
    assert!(
        first.elapsed() < INTERVAL - Duration::from_millis(100),
        "with write_interval 0 the second publication took {:?}",
        first.elapsed()
    );
}
