//! Issue 24's trial: two instances on one Redis, a publisher and a subscriber on each, on
//! a channel with history; Redis is killed (SIGKILL) under load and started again. With
//! its data kept (AOF, `appendfsync always`) every acked publication must reach every
//! subscriber exactly once and in order; restarted empty, every subscriber must receive
//! every acked publication or be told (`unsubscribed` with `reason: recovery_failed`),
//! and then, subscribed again with `since`, every publication acked after its new start.
//!
//! Also prints the fault figures of docs/faults.md: how long after Redis is back the
//! acks resume, and cross-instance delivery.
//!
//!   cargo test --test history_outage -- --nocapture --test-threads 1

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::cluster::{cluster_with, relay_subscribed};
use common::history::with_history;
use common::outage::{acked, complete, ms_after, seen, violations, Publisher, Subscriber};
use common::redis::Redis;

const CHANNEL: &str = "log:outage";
/// 200 publications per second per publisher.
const EVERY: Duration = Duration::from_millis(5);
/// Before the kill, of the outage, and after Redis is back.
const BEFORE: Duration = Duration::from_millis(1500);
const OUTAGE: Duration = Duration::from_millis(1500);
const AFTER: Duration = Duration::from_millis(3000);
/// The longest wait for every subscriber to have what it should (a failure otherwise).
const SETTLE: Duration = Duration::from_secs(30);
/// Listening on once everything arrived, for duplicates.
const QUIET: Duration = Duration::from_millis(500);

/// One trial at a time: the figures are timings.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn acked_publications_survive_a_redis_restart_with_aof() {
    let Some(redis) = Redis::start_persistent() else {
        return;
    };
    trial(redis, true);
}

#[test]
fn subscribers_are_told_when_redis_comes_back_empty() {
    let Some(redis) = Redis::start() else { return };
    trial(redis, false);
}

fn trial(mut redis: Redis, persistent: bool) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let label = if persistent {
        "AOF on"
    } else {
        "restarted empty"
    };
    let hubs = cluster_with(&redis, 2, with_history);
    let subs: Vec<Subscriber> = hubs
        .iter()
        .enumerate()
        .map(|(i, h)| Subscriber::start(h.addr, CHANNEL, &format!("subscriber-{i}")))
        .collect();
    for h in &hubs {
        relay_subscribed(h, 1);
    }
    let start = Instant::now();
    let pubs: Vec<Publisher> = hubs
        .iter()
        .enumerate()
        .map(|(i, h)| Publisher::start(h.addr, CHANNEL, i as u64, EVERY))
        .collect();
    std::thread::sleep(BEFORE);
    redis.stop();
    std::thread::sleep(OUTAGE);
    redis.restart();
    let back = Instant::now();
    std::thread::sleep(AFTER);
    let sent: Vec<_> = pubs.into_iter().map(Publisher::stop).collect();
    let acked_all = acked(&sent, start);
    let renewed = acked(&sent, back);
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline
        && !subs
            .iter()
            .all(|s| complete(&seen(&s.snapshot(), CHANNEL), &acked_all, &renewed))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(QUIET);
    let frames: Vec<_> = subs.into_iter().map(Subscriber::stop).collect();

    // The figures.
    let sent_at: HashMap<(u64, u64), Instant> = sent
        .iter()
        .enumerate()
        .flat_map(|(p, l)| l.iter().map(move |s| ((p as u64, s.n), s.sent)))
        .collect();
    for (p, list) in sent.iter().enumerate() {
        let refused = list.iter().filter(|s| s.code.is_some()).count();
        let acks = list
            .iter()
            .filter(|s| s.offset.is_some())
            .map(|s| s.answered);
        println!(
            "{label}: publisher {p}: {} sent, {} acked, {refused} refused; acks resumed {:?} ms after Redis was back",
            list.len(),
            list.iter().filter(|s| s.offset.is_some()).count(),
            ms_after(back, acks)
        );
    }
    let mut wrong = Vec::new();
    for (j, f) in frames.iter().enumerate() {
        let s = seen(f, CHANNEL);
        let crossing = s
            .all()
            .filter(|m| m.0 .0 != j as u64 && sent_at.get(&m.0).is_some_and(|t| *t >= back))
            .map(|m| m.2);
        println!(
            "{label}: subscriber {j}: {} messages, told: {}, then {:?} more; cross-instance delivery resumed {:?} ms after Redis was back",
            s.messages.len(),
            s.told,
            s.again.as_ref().map(|a| a.1.len()),
            ms_after(back, crossing)
        );
        let name = format!("subscriber {j}");
        wrong.extend(violations(
            &name,
            &s,
            &acked_all,
            &renewed,
            persistent,
            !persistent,
        ));
    }
    assert!(
        wrong.is_empty(),
        "{label}: {} acked publications; the promise is broken:\n{}",
        acked_all.len(),
        wrong.join("\n")
    );
}
