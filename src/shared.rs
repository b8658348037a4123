//! State every shard and the control plane share, read-mostly: configuration, keys, the
//! inboxes, the channel interest map, and a few hub-wide counters.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use dashmap::DashMap;

use crate::auth::Verifier;
use crate::config::Config;
use crate::per_ip::PerIp;
use crate::route::inbox::{Inbox, ShardMsg};

pub struct Shared {
    pub config: Config,
    pub verifier: Verifier,
    pub instance: String,
    pub inboxes: Vec<Inbox>,
    /// Channel -> bitmask of the shards that have subscribers for it. A shard sets its bit on
    /// its first local subscriber and clears it after its last, so a publication is sent only
    /// to shards that want it.
    pub interest: DashMap<Arc<str>, u64>,
    /// Upgraded WebSocket connections, all shards (bounded by `max_connections`).
    pub connections: AtomicUsize,
    /// Open connections per shard.
    pub shard_connections: Vec<AtomicUsize>,
    /// The hub has started (`/ready` answers 200 while this holds, every shard serves, and
    /// the hub is not draining).
    pub ready: AtomicBool,
    /// Shard threads serving; `hub.rs` counts them up and down.
    pub serving: AtomicUsize,
    /// Notified when the last connection goes, which ends a drain early.
    gone: (Mutex<()>, Condvar),
    pub draining: AtomicBool,
    pub per_ip: PerIp,
    pub metrics: crate::metrics::Metrics,
    /// The Redis relay's queue and state (None without `redis_url` or `redis_cluster`).
    pub relay: Option<crate::route::relay_queue::RelayQueue>,
    /// `rpc` routes and the queue to the control thread (None: no backend configured).
    pub rpc: Option<crate::route::rpc_queue::RpcQueue>,
    /// The token store's queue to the control thread (None without `token_store`).
    pub tokens: Option<crate::route::token_queue::TokenQueue>,
    /// The webhook endpoints' queues (None: no `[[webhooks]]`). Shared with the rpc
    /// breakers, which report their transitions.
    pub webhooks: Option<Arc<crate::route::webhook_queue::Webhooks>>,
    /// This process's history epoch (without Redis, history does not outlive the process).
    pub epoch: Arc<str>,
    /// The namespaces' chat rules.
    pub chat: crate::chat::Book,
    /// Traces (None without `otlp_endpoint`: no span is built).
    pub traces: Option<crate::telemetry::Traces>,
}

impl Shared {
    pub fn new(config: Config, verifier: Verifier, instance: String, shards: usize) -> Arc<Shared> {
        let per_ip = PerIp::new(
            config.connects_per_second_per_ip,
            config.max_connections_per_ip,
        );
        let relay = config
            .has_redis()
            .then(|| crate::route::relay_queue::RelayQueue::new(config.relay_queue));
        let webhooks = crate::route::webhook_queue::Webhooks::new(&config, &instance).map(Arc::new);
        let rpc = crate::route::rpc_queue::RpcQueue::new(&config, webhooks.clone());
        let chat = crate::chat::Book::new(&config);
        let tokens = crate::route::token_queue::TokenQueue::new(&config);
        let traces = crate::telemetry::Traces::new(&config, &instance);
        Arc::new(Shared {
            tokens,
            traces,
            chat,
            per_ip,
            config,
            verifier,
            instance,
            inboxes: (0..shards).map(|_| Inbox::default()).collect(),
            interest: DashMap::new(),
            connections: AtomicUsize::new(0),
            shard_connections: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            ready: AtomicBool::new(false),
            serving: AtomicUsize::new(0),
            gone: (Mutex::new(()), Condvar::new()),
            draining: AtomicBool::new(false),
            metrics: crate::metrics::Metrics::new(shards),
            relay,
            rpc,
            webhooks,
            epoch: format!("{:08x}", rand::random::<u32>()).into(),
        })
    }

    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// The shard that owns a user (or, through `owner_of`, a channel): `hash(key) % N`.
    pub fn shard_of(&self, user: &str) -> usize {
        (fnv1a(user.as_bytes()) % self.shards() as u64) as usize
    }

    pub fn send(&self, shard: usize, msg: ShardMsg) {
        self.inboxes[shard].send(msg);
    }

    /// Reserves a connection slot; false at `max_connections`.
    pub fn try_count_connection(&self) -> bool {
        let max = self.config.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Releases the slots `try_count_connection` and the per-IP admission took.
    pub fn uncount_connection(&self, ip: std::net::IpAddr) {
        if self.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock, so that a waiter between its check and its wait still hears it.
            drop(self.gone.0.lock());
            self.gone.1.notify_all();
        }
        self.per_ip.release(ip, std::time::Instant::now());
    }

    /// Waits until no connection is left or `deadline` passes; returns the connections left.
    pub fn wait_no_connections(&self, deadline: Instant) -> usize {
        let mut guard = self.gone.0.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let left = self.connections.load(Ordering::Acquire);
            let now = Instant::now();
            if left == 0 || now >= deadline {
                return left;
            }
            guard = match self.gone.1.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// `/ready` answers 200: started, every shard serving, not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && self.serving.load(Ordering::Acquire) == self.shards()
            && !self.is_draining()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks a shard interested in a channel (first local subscriber).
    pub fn add_interest(&self, channel: &Arc<str>, shard: usize) {
        let first = {
            let mut bits = self.interest.entry(channel.clone()).or_insert(0);
            let first = *bits == 0;
            *bits |= 1 << shard;
            first
        };
        if let (true, Some(relay)) = (first, &self.relay) {
            relay.interest_changed(channel);
        }
    }

    /// Clears a shard's interest (last local subscriber gone).
    pub fn remove_interest(&self, channel: &str, shard: usize) {
        if let Some(mut bits) = self.interest.get_mut(channel) {
            *bits &= !(1u64 << shard);
        }
        let removed = self.interest.remove_if(channel, |_, bits| *bits == 0);
        if let (Some((name, _)), Some(relay)) = (removed, &self.relay) {
            relay.interest_changed(&name);
        }
    }

    /// The shard that sequences and keeps a channel's history: `hash(channel) % N`.
    pub fn owner_of(&self, channel: &str) -> usize {
        self.shard_of(channel)
    }

    /// The shards with subscribers for a channel.
    pub fn interested(&self, channel: &str) -> u64 {
        self.interest.get(channel).map_or(0, |b| *b)
    }
}

/// FNV-1a, 64 bit: stable across processes and versions, so every instance agrees on a
/// user's shard index.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_spread_over_shards_and_stay_put() {
        let config = Config::default();
        let v = Verifier::new(&config, b"x").unwrap();
        let s = Shared::new(config, v, "i".into(), 4);
        let mut seen = [0; 4];
        for i in 0..1000 {
            let u = format!("user{i}");
            assert_eq!(s.shard_of(&u), s.shard_of(&u));
            seen[s.shard_of(&u)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
    }

    #[test]
    fn interest_bits() {
        let config = Config::default();
        let v = Verifier::new(&config, b"x").unwrap();
        let s = Shared::new(config, v, "i".into(), 4);
        let ch: Arc<str> = "t:1".into();
        s.add_interest(&ch, 1);
        s.add_interest(&ch, 3);
        assert_eq!(s.interested("t:1"), 0b1010);
        s.remove_interest("t:1", 1);
        assert_eq!(s.interested("t:1"), 0b1000);
        s.remove_interest("t:1", 3);
        assert!(s.interest.is_empty());
    }
}
