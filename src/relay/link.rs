//! The relay's connection to Redis and its main loop: connect (with backoff and jitter),
//! subscribe to the fixed topics and to every channel with local interest, then move
//! messages both ways until something breaks, and start again. While Redis is away the
//! outgoing queue is drained and counted as dropped, so nothing stale is sent after it
//! returns and no shard ever waits.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::cluster::{self, Target};
use super::sharded::{self, Incoming, Sink};
use super::{inbound, outbound, UNSUBSCRIBE_GRACE};
use crate::route::inbox::ShardMsg;
use crate::route::relay_queue::Out;
use crate::shared::Shared;

/// Most messages published in one pipeline.
const BATCH: usize = 512;
/// Longest a Redis command may take before the link counts as broken.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The retry delay doubles from `BACKOFF_MIN` to `BACKOFF_MAX`, ±50% jitter so that many
/// instances do not reconnect in step. The cap is low on purpose: a failed attempt against
/// an absent Redis costs one refused connect, and the relay (acks on channels with history,
/// cross-instance delivery) is back at most ~0.75 s after Redis is.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
const WARN_EVERY: u64 = 20;

/// Runs the relay until the runtime is dropped.
pub async fn run(shared: Arc<Shared>) {
    let Some(handle) = shared.relay.as_ref() else {
        return;
    };
    let Some(mut rx) = handle.take_receiver() else {
        return;
    };
    let target = match Target::from_config(&shared.config) {
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            tracing::error!(error = %e, "the relay is off");
            return;
        }
        None => return,
    };
    let mut backoff = BACKOFF_MIN;
    let mut connected_before = false;
    // Failed attempts since the link was last up: the first is a warning, then one in
    // `WARN_EVERY` (about every 10 s at the cap), the rest debug lines.
    let mut failures: u64 = 0;
    loop {
        let started = Instant::now();
        let err = session(&shared, &target, &mut rx, &mut connected_before).await;
        if handle.stats.up.swap(false, Ordering::AcqRel) {
            failures = 0;
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = BACKOFF_MIN;
        }
        let pause = backoff.mul_f64(rand::rng().random_range(0.5..1.5));
        let retry_in_ms = pause.as_millis() as u64;
        if failures % WARN_EVERY == 0 {
            tracing::warn!(error = %err, retry_in_ms, failures, "relay: Redis unavailable; delivering locally only");
        } else {
            tracing::debug!(error = %err, retry_in_ms, failures, "relay: Redis still unavailable");
        }
        failures += 1;
        // Meanwhile: drop what shards queue (counted), answer ingress with a failure.
        let deadline = tokio::time::sleep(pause);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                out = rx.recv() => match out {
                    Some(out) => crate::route::relay_queue::refuse(&shared, out),
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connected period. Returns why it ended.
async fn session(
    shared: &Arc<Shared>,
    target: &Target,
    rx: &mut tokio::sync::mpsc::Receiver<Out>,
    connected_before: &mut bool,
) -> redis::RedisError {
    let handle = shared.relay.as_ref().expect("relay configured");
    let prefix = shared.config.redis_prefix.clone();
    let me = shared.instance.clone();
    let mut publisher = match target.connect().await {
        Ok(c) => c,
        Err(e) => return e,
    };
    let (mut sink, mut stream) = match sharded::open(target).await {
        Ok(p) => p,
        Err(e) => return e,
    };
    let fixed = [
        format!("{prefix}cluster"),
        format!("{prefix}reply.{me}"),
        format!("{prefix}egress"),
        format!("{prefix}egress.{me}"),
    ];
    if let Err(e) = sink.fixed(&fixed).await {
        return e;
    }
    // Every channel with local interest, then only the changes.
    handle.take_dirty();
    let mut subscribed: HashSet<Arc<str>> = HashSet::new();
    let mut leaving: HashMap<Arc<str>, Instant> = HashMap::new();
    let all: Vec<Arc<str>> = shared.interest.iter().map(|e| e.key().clone()).collect();
    if let Err(e) = subscribe(shared, &mut sink, &all, &mut subscribed).await {
        return e;
    }
    handle
        .stats
        .subscriptions
        .store(subscribed.len() as u64, Ordering::Relaxed);
    if !*connected_before {
        // What a previous life of this instance id left in the presence sets.
        if let Err(e) = super::members::clean_up(shared, &mut publisher, &me).await {
            return e;
        }
    }
    if let Err(e) = outbound::heartbeat(shared, &mut publisher).await {
        return e;
    }
    handle.stats.up.store(true, Ordering::Release);
    // Every channel's topic is subscribed again: what was published meanwhile is in the
    // streams, and the shards' streams ask for it (`shard::gaps`).
    for shard in 0..shared.shards() {
        shared.send(shard, ShardMsg::Resumed);
    }
    if std::mem::replace(connected_before, true) {
        handle.stats.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    tracing::info!(channels = subscribed.len(), "relay: connected to Redis");
    let mut topology = match cluster::masters(&mut publisher).await {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut batch = Vec::with_capacity(BATCH);
    // Cluster only: a node's connection dropped at this time, so the next confirmed
    // subscription means channels are back, and may have missed publications meanwhile.
    let mut dropped_at: Option<Instant> = None;
    let mut resume = false;
    // Cluster only: heartbeats failed in a row (its slot's master may be failing over).
    let mut heartbeat_failures = 0u32;
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return redis::RedisError::from((redis::ErrorKind::Client, "the hub is stopping"));
                }
                let mut deferred = Vec::new();
                let published = outbound::publish(shared, &mut publisher, &mut batch, &mut deferred).await;
                if let Err(e) = published {
                    refuse_all(shared, deferred);
                    return e;
                }
                if !deferred.is_empty() {
                    // A recovery reads the stream only once the channel's topic is
                    // subscribed: what is published later arrives live (deduplicated by
                    // offset), what was published before is in the stream.
                    if let Err(e) = reconcile(shared, &mut sink, &mut subscribed, &mut leaving).await {
                        refuse_all(shared, deferred);
                        return e;
                    }
                    let mut pending = deferred.into_iter();
                    while let Some(out) = pending.next() {
                        let done = match out {
                            Out::Recover { channel, since, to } => super::history::recover(shared, &mut publisher, channel, since, to).await,
                            Out::History { channel, since, limit, to } => super::history::history(shared, &mut publisher, channel, since, limit, to).await,
                            _ => Ok(()),
                        };
                        if let Err(e) = done {
                            refuse_all(shared, pending.collect());
                            return e;
                        }
                    }
                }
            }
            msg = stream.next() => match msg {
                Some(Incoming::Msg(msg)) => inbound::handle(shared, &msg),
                Some(Incoming::Dropped(topic)) => {
                    // Ended by the server (its slot moved), not by `leave`: ask again.
                    let wanted = cluster::channel_of(&shared.config, &topic)
                        .is_some_and(|ch| subscribed.contains(ch));
                    if wanted {
                        tracing::info!(topic, "relay: shard channel unsubscribed by Redis; subscribing again");
                        if let Err(e) = sink.join(&[topic]).await {
                            return e;
                        }
                        dropped_at = Some(Instant::now());
                    }
                }
                Some(Incoming::Disconnected) => dropped_at = Some(Instant::now()),
                Some(Incoming::Confirmed) => resume |= dropped_at.is_some(),
                None => return redis::RedisError::from((redis::ErrorKind::Io, "the subscription connection closed")),
            },
            _ = handle.wake.notified() => {
                if let Err(e) = reconcile(shared, &mut sink, &mut subscribed, &mut leaving).await {
                    return e;
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let due: Vec<Arc<str>> = leaving
                    .iter()
                    .filter(|(ch, at)| **at <= now && shared.interested(ch) == 0)
                    .map(|(ch, _)| ch.clone())
                    .collect();
                leaving.retain(|ch, at| *at > now && shared.interested(ch) == 0);
                if !due.is_empty() {
                    let topics: Vec<String> = due.iter().map(|ch| cluster::topic(&shared.config, ch)).collect();
                    if let Err(e) = sink.leave(&topics).await {
                        return e;
                    }
                    for ch in &due {
                        subscribed.remove(ch);
                    }
                    handle.stats.subscriptions.store(subscribed.len() as u64, Ordering::Relaxed);
                }
                if std::mem::take(&mut resume) {
                    // Channels with history ask for what they missed (`shard::gaps`).
                    for shard in 0..shared.shards() {
                        shared.send(shard, ShardMsg::Resumed);
                    }
                }
                if dropped_at.is_some_and(|at| at.elapsed() > Duration::from_secs(60)) {
                    dropped_at = None;
                }
                if dropped_at.is_some() {
                    // The crate subscribes again at a reconnected node, but does not
                    // look for a failed one's successor on a connection that only
                    // subscribes: once the masters changed, subscribe anew.
                    match cluster::masters(&mut publisher).await {
                        Ok(now) if now != topology => {
                            topology = now;
                            tracing::info!(channels = subscribed.len(), "relay: the cluster's masters changed; subscribing anew");
                            (sink, stream) = match sharded::open(target).await {
                                Ok(p) => p,
                                Err(e) => return e,
                            };
                            if let Err(e) = sink.fixed(&fixed).await {
                                return e;
                            }
                            let all: Vec<Arc<str>> = subscribed.iter().cloned().collect();
                            if let Err(e) = subscribe(shared, &mut sink, &all, &mut subscribed).await {
                                return e;
                            }
                            dropped_at = None;
                            resume = false;
                            for shard in 0..shared.shards() {
                                shared.send(shard, ShardMsg::Resumed);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "relay: cannot read the cluster's slots"),
                    }
                }
                match outbound::heartbeat(shared, &mut publisher).await {
                    Ok(()) => heartbeat_failures = 0,
                    // A cluster is not down when one slot is: the crate finds its new
                    // master; three missed beats in a row start the link anew.
                    Err(e) if publisher.is_cluster() && heartbeat_failures < 2 => {
                        heartbeat_failures += 1;
                        tracing::warn!(error = %e, "relay: heartbeat failed");
                    }
                    Err(e) => return e,
                }
            }
        }
    }
}

/// Answers what can no longer be done in this session (the link broke).
fn refuse_all(shared: &Shared, outs: Vec<Out>) {
    for out in outs {
        crate::route::relay_queue::refuse(shared, out);
    }
}

/// Applies the interest changes: subscribes at once, unsubscribes after the grace period.
async fn reconcile(
    shared: &Shared,
    sink: &mut Sink,
    subscribed: &mut HashSet<Arc<str>>,
    leaving: &mut HashMap<Arc<str>, Instant>,
) -> Result<(), redis::RedisError> {
    let handle = shared.relay.as_ref().expect("relay configured");
    let now = Instant::now();
    let mut join = Vec::new();
    for ch in handle.take_dirty() {
        if shared.interested(&ch) != 0 {
            leaving.remove(&ch);
            if !subscribed.contains(&ch) {
                join.push(ch);
            }
        } else if subscribed.contains(&ch) {
            leaving.entry(ch).or_insert(now + UNSUBSCRIBE_GRACE);
        }
    }
    subscribe(shared, sink, &join, subscribed).await?;
    handle
        .stats
        .subscriptions
        .store(subscribed.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Subscribes to the topics of `channels` not yet subscribed, in chunks.
async fn subscribe(
    shared: &Shared,
    sink: &mut Sink,
    channels: &[Arc<str>],
    subscribed: &mut HashSet<Arc<str>>,
) -> Result<(), redis::RedisError> {
    for chunk in channels.chunks(1000) {
        let topics: Vec<String> = chunk
            .iter()
            .map(|ch| cluster::topic(&shared.config, ch))
            .collect();
        if topics.is_empty() {
            continue;
        }
        sink.join(&topics).await?;
        subscribed.extend(chunk.iter().cloned());
    }
    Ok(())
}

pub async fn timed<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "Redis did not answer in time",
        ))),
    }
}
