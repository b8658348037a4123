//! Three instances on a real Redis Cluster (three masters, three replicas, started by the
//! test): publications across instances on channels of every master, presence, history
//! recovery with `since`; then a master killed under load: its replica takes over, delivery
//! resumes, and no acknowledged publication of a history channel is lost.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{instances, relay_subscribed};
use common::history::{subscribe_since, with_history};
use common::redis_cluster::RedisCluster;
use common::{connect, Client, TestHub};
use serde_json::{json, Value};

fn hubs(redis: &RedisCluster) -> Vec<TestHub> {
    let seeds = redis.seeds();
    instances(3, |c| {
        c.redis_cluster = seeds.clone();
        with_history(c);
    })
}

#[test]
fn a_redis_cluster_relays_presence_history_and_survives_a_failover() {
    let Some(mut redis) = RedisCluster::start() else {
        return;
    };
    let hubs = hubs(&redis);
    across_instances(&redis, &hubs);
    presence(&hubs);
    recovery(&hubs);
    failover(&mut redis, &hubs);
}

/// Channels whose slots are on every master reach subscribers on the other instances.
fn across_instances(redis: &RedisCluster, hubs: &[TestHub]) {
    let channels: Vec<String> = (0..12).map(|i| format!("chat:c{i}")).collect();
    let masters: std::collections::HashSet<u16> = channels
        .iter()
        .map(|ch| redis.master_of(&format!("ringhub:ch.{{{ch}}}")))
        .collect();
    assert_eq!(masters.len(), 3, "the channels cover the three masters");
    let mut subs: Vec<Client> = (1..3).map(|i| connect(hubs[i].addr, "sub").0).collect();
    for s in &mut subs {
        for ch in &channels {
            s.subscribe(ch);
        }
    }
    relay_subscribed(&hubs[1], channels.len());
    relay_subscribed(&hubs[2], channels.len());
    let (mut publisher, _) = connect(hubs[0].addr, "pub");
    for (i, ch) in channels.iter().enumerate() {
        publisher.request(
            json!({"type": "publish", "channel": ch, "data": i}),
            i as u64,
        );
    }
    // Each channel in order; channels of different masters in no particular order.
    for s in &mut subs {
        let mut got: Vec<(u64, String)> = (0..channels.len())
            .map(|_| {
                let m = s.recv();
                (
                    m["data"].as_u64().unwrap(),
                    m["channel"].as_str().unwrap().into(),
                )
            })
            .collect();
        got.sort();
        let want: Vec<(u64, String)> = channels
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, c)| (i as u64, c))
            .collect();
        assert_eq!(got, want);
    }
}

/// Joins travel between instances, and presence covers all three.
fn presence(hubs: &[TestHub]) {
    let (mut a, _) = connect(hubs[0].addr, "alice");
    let (mut b, _) = connect(hubs[1].addr, "bob");
    let (mut c, _) = connect(hubs[2].addr, "carol");
    a.subscribe("room:c");
    assert_eq!(a.recv()["user"], "alice", "one's own join");
    relay_subscribed(&hubs[0], 1);
    b.subscribe("room:c");
    c.subscribe("room:c");
    let mut joined: Vec<String> = (0..2)
        .map(|_| a.recv()["user"].as_str().unwrap().to_string())
        .collect();
    joined.sort();
    assert_eq!(joined, ["bob", "carol"]);
    let p = a.request(json!({"type": "presence", "channel": "room:c"}), 7);
    let mut users: Vec<&str> = p["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    users.sort();
    assert_eq!(users, ["alice", "bob", "carol"], "{p}");
}

/// Published on one instance, recovered with `since` on another.
fn recovery(hubs: &[TestHub]) {
    let (mut p, _) = connect(hubs[0].addr, "pub");
    let mut last = 0;
    for i in 1..=10 {
        let r = p.request(json!({"type": "publish", "channel": "log:r", "data": i}), i);
        assert_eq!(r["type"], "ack", "{r}");
        last = r["offset"].as_u64().unwrap();
    }
    let (mut c, _) = connect(hubs[2].addr, "reader");
    let r = subscribe_since(&mut c, "log:r", None);
    assert_eq!(r["offset"], last, "{r}");
    let epoch = r["epoch"].as_str().unwrap().to_string();
    c.unsubscribe_quietly("log:r");
    let (mut c, _) = connect(hubs[1].addr, "reader");
    let r = subscribe_since(&mut c, "log:r", Some((last - 4, &epoch)));
    assert_eq!(r["recovered"], true, "{r}");
    let offsets: Vec<u64> = (0..4)
        .map(|_| c.recv()["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [last - 3, last - 2, last - 1, last]);
}

/// Publishes on `log:f` (history) and `chat:f` from its own thread until stopped; returns
/// the offsets acknowledged on `log:f` and how many `chat:f` publications were acked.
fn load(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> (Vec<u64>, u64) {
    let (mut p, _) = connect(addr, "loader");
    let (mut acked, mut chat) = (Vec::new(), 0);
    let mut id = 0;
    // While the master fails over, an answer may take a few seconds (the relay's Redis
    // timeouts): wait longer than `Client::request` does.
    let mut slowest = Duration::ZERO;
    let mut request = |p: &mut Client, channel: &str, id: u64| {
        let publication = json!({"type": "publish", "channel": channel, "data": id});
        let t = std::time::Instant::now();
        let r = p.request_within(publication, id, Duration::from_secs(15));
        slowest = slowest.max(t.elapsed());
        r
    };
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        let r = request(&mut p, "log:f", id);
        if r["type"] == "ack" {
            acked.push(r["offset"].as_u64().unwrap());
        }
        id += 1;
        let r = request(&mut p, "chat:f", id);
        if r["type"] == "ack" {
            chat += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!("loader: slowest answer {slowest:?}");
    (acked, chat)
}

/// Kills the master of `log:f`'s slot under load and counts what the other instances got.
fn failover(redis: &mut RedisCluster, hubs: &[TestHub]) {
    let mut subs: Vec<Client> = (1..3).map(|i| connect(hubs[i].addr, "watcher").0).collect();
    for s in &mut subs {
        subscribe_since(s, "log:f", None);
        s.subscribe("chat:f");
    }
    relay_subscribed(&hubs[1], 2);
    relay_subscribed(&hubs[2], 2);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = hubs[0].addr;
    let loader = {
        let stop = stop.clone();
        std::thread::spawn(move || load(addr, stop))
    };
    let seen: Vec<_> = subs
        .iter_mut()
        .map(|s| s.frames_for(Duration::from_millis(300)))
        .collect();
    let dead = redis.master_of("ringhub:history.{log:f}");
    let shared = redis.master_of("ringhub:ch.{chat:f}") == dead;
    redis.kill(dead);
    let new = redis.wait_failover("ringhub:history.{log:f}", dead);
    // Delivery resumes: publications go on for a while after the replica took over.
    let after: Vec<_> = subs
        .iter_mut()
        .map(|s| s.frames_for(Duration::from_millis(1500)))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let (acked, chat_acked) = loader.join().unwrap();
    assert!(acked.len() > 20, "the load ran: {} acked", acked.len());
    let last = *acked.last().unwrap();
    for (i, s) in subs.iter_mut().enumerate() {
        let mut frames: Vec<Value> = seen[i].clone();
        frames.extend(after[i].iter().cloned());
        // Whatever is still on its way (recoveries of gaps) arrives now.
        frames.extend(s.frames_for(Duration::from_millis(1000)));
        let mut log: HashMap<u64, u32> = HashMap::new();
        let mut chat: HashMap<i64, u32> = HashMap::new();
        for m in frames.iter().filter(|m| m["type"] == "message") {
            if m["channel"] == "log:f" {
                *log.entry(m["offset"].as_u64().unwrap()).or_default() += 1;
            } else if m["channel"] == "chat:f" {
                *chat.entry(m["data"].as_i64().unwrap()).or_default() += 1;
            }
        }
        let lost: Vec<u64> = acked
            .iter()
            .copied()
            .filter(|o| !log.contains_key(o))
            .collect();
        let dup_log = log.values().filter(|&&n| n > 1).count();
        let dup_chat = chat.values().filter(|&&n| n > 1).count();
        eprintln!(
            "watcher {i}: master {dead} -> {new} (chat:f's too: {shared}); log:f {} acked (last {last}), {} lost, {dup_log} duplicated; \
             chat:f {chat_acked} acked, {} received, {} lost, {dup_chat} duplicated",
            acked.len(),
            lost.len(),
            chat.len(),
            chat_acked.saturating_sub(chat.len() as u64),
        );
        assert!(lost.is_empty(), "watcher {i} lost acked offsets {lost:?}");
        assert_eq!(
            dup_log, 0,
            "watcher {i}: a history channel delivers each offset once"
        );
        assert!(
            log.contains_key(&last),
            "watcher {i}: delivery resumed after the failover"
        );
    }
}
