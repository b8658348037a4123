//! The Redis relay: how instances of one cluster reach each other (DESIGN.md, Redis relay),
//! and how backends reach the hub through Redis (PROTOCOL.md §7).
//!
//! Shards hand what must leave the instance to a bounded queue ([`Handle::push`]): it never
//! blocks a shard, and what does not fit is dropped and counted. The relay runs on the
//! control thread: it publishes the queue in pipelined batches, subscribes to what this
//! instance's subscribers need, and hands what arrives to the shards through their inboxes.
//!
//! Topics (all under `redis_prefix`):
//!
//! - `ch.<channel>` — publications, one topic per channel. The relay subscribes to a
//!   channel's topic while some local shard has subscribers (the interest map), so an
//!   instance receives only what its clients want. The price is subscription churn: a
//!   channel's first local subscriber costs one SUBSCRIBE, its last one an UNSUBSCRIBE after
//!   a grace period (`UNSUBSCRIBE_GRACE`). In a reconnect storm of 50,000 clients the churn is
//!   bounded by the number of distinct channels on the instance, not by clients, and the
//!   grace period absorbs channels that empty and refill. Hashed partitions would make
//!   subscriptions static, but every instance would receive the traffic of every channel in
//!   its partitions: with sparse interest (tables, rooms) most of it wasted.
//! - `cluster` — operations every instance applies to its own connections: direct messages,
//!   `broadcast_all`, disconnects, revocations, server-side subscriptions, presence queries.
//! - `reply.<instance>` — answers to this instance's presence queries.
//! - `egress`, `egress.<instance>` — backends' operations (JSON, §7).
//!
//! Ingress (client `event`s, publications on `ingress` namespaces, session events) is
//! appended to the stream `ingress.v1` from the same queue.

mod egress;
pub mod envelope;
pub mod history;
mod inbound;
mod link;
mod members;
mod outbound;
pub mod presence;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

pub use link::{run, timed};
pub use outbound::unix_ms;

/// How long a channel keeps its Redis subscription after its last local subscriber left.
pub const UNSUBSCRIBE_GRACE: Duration = Duration::from_secs(2);

/// Where a relay message is published.
pub enum Topic {
    /// `ch.<channel>`: the channel's subscribers on other instances.
    Channel(Arc<str>),
    /// `cluster`: every other instance.
    Cluster,
    /// `reply.<instance>`: one instance's presence query.
    Reply(Box<str>),
}

/// Sends a publication's finished frame to the other instances' subscribers of `channel`
/// (nothing without Redis).
pub fn publication(shared: &crate::shared::Shared, channel: &str, frame: &Bytes) {
    if let Some(relay) = &shared.relay {
        let payload = crate::ws::frame::payload_of(frame);
        let topic = Topic::Channel(channel.into());
        relay.send(
            &shared.instance,
            topic,
            envelope::Kind::Message,
            None,
            channel,
            &payload,
        );
    }
}

/// Sends a direct message's finished frame to the other instances (the user may be
/// connected there too).
pub fn direct(shared: &crate::shared::Shared, user: &str, frame: &Bytes) {
    if let Some(relay) = &shared.relay {
        let payload = crate::ws::frame::payload_of(frame);
        relay.send(
            &shared.instance,
            Topic::Cluster,
            envelope::Kind::Direct,
            None,
            user,
            &payload,
        );
    }
}

/// What leaves the instance through the relay.
pub enum Out {
    Envelope {
        topic: Topic,
        bytes: Bytes,
    },
    /// A user's presence on this instance began (`joined`) or ended: `join` / `leave` is
    /// announced when it is the user's first / last instance in the channel.
    Transition {
        channel: Arc<str>,
        user: Arc<str>,
        info: Box<str>,
        joined: bool,
    },
    /// A publication on a channel with history: sequenced by Redis (see `history.rs`).
    Sequence(history::Append),
    /// Where a subscription on a channel with history stands, and what it missed.
    Recover {
        channel: Arc<str>,
        since: Option<crate::protocol::Since>,
        to: crate::shard::inbox::ConnRef,
    },
    /// Stored publications of a channel.
    History {
        channel: Arc<str>,
        since: Option<u64>,
        limit: usize,
        to: crate::shard::inbox::HistoryTo,
    },
    /// A presence query of a client on `shard`: the other instances' parts are gathered and
    /// sent to the shard as the part of query `query`.
    Presence {
        channel: Arc<str>,
        shard: usize,
        query: u64,
    },
    /// An entry for the ingress stream: field/value pairs. `ack` is told whether Redis took it.
    Ingress {
        fields: Vec<(&'static str, String)>,
        ack: Option<IngressAck>,
    },
}

/// Where the outcome of an ingress append goes: a connection's request on its shard.
pub struct IngressAck {
    pub shard: usize,
    pub key: usize,
    pub conn: u64,
    pub id: Option<u64>,
}

/// The relay's counters, for `/metrics`.
#[derive(Default)]
pub struct Stats {
    pub up: AtomicBool,
    pub reconnects: AtomicU64,
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    pub dropped: AtomicU64,
    pub received: AtomicU64,
    pub malformed: AtomicU64,
    pub egress: AtomicU64,
    pub egress_malformed: AtomicU64,
    pub ingress: AtomicU64,
    pub ingress_failures: AtomicU64,
    pub subscriptions: AtomicU64,
}

/// The shards' side of the relay (present when `redis_url` is set).
pub struct Handle {
    tx: tokio::sync::mpsc::Sender<Out>,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<Out>>>,
    /// Channels whose local interest changed since the relay last looked.
    dirty: Mutex<HashSet<Arc<str>>>,
    wake: tokio::sync::Notify,
    pub stats: Stats,
    capacity: usize,
    /// Other live instances, from the heartbeat hash (refreshed every second).
    pub peers: Mutex<Vec<Peer>>,
    /// This instance's presence queries waiting for the others' answers.
    pub(crate) queries: Mutex<HashMap<u64, presence::Waiting>>,
    pub(crate) next_query: AtomicU64,
}

/// Another instance, as its last heartbeat described it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub instance: String,
    pub shards: usize,
    pub connections: usize,
    /// Unix milliseconds of the heartbeat.
    pub ts: u64,
}

impl Handle {
    pub fn new(capacity: usize) -> Handle {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        Handle {
            tx,
            rx: Mutex::new(Some(rx)),
            dirty: Mutex::new(HashSet::new()),
            wake: tokio::sync::Notify::new(),
            stats: Stats::default(),
            capacity: capacity.max(1),
            peers: Mutex::new(Vec::new()),
            queries: Mutex::new(HashMap::new()),
            next_query: AtomicU64::new(0),
        }
    }

    /// Queues a message without waiting; false (and counted) when the queue is full.
    pub fn push(&self, out: Out) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues a message; when it cannot be queued, whoever waits for an answer gets a
    /// refusal at once.
    pub fn push_or_refuse(&self, shared: &crate::shared::Shared, out: Out) {
        if let Err(e) = self.tx.try_send(out) {
            let out = match e {
                tokio::sync::mpsc::error::TrySendError::Full(o)
                | tokio::sync::mpsc::error::TrySendError::Closed(o) => o,
            };
            outbound::drop_one(shared, out);
        }
    }

    /// Is Redis reachable (as far as the relay knows)?
    pub fn is_up(&self) -> bool {
        self.stats.up.load(Ordering::Acquire)
    }

    /// Messages waiting to be published.
    pub fn queue_depth(&self) -> usize {
        self.capacity - self.tx.capacity()
    }

    /// A channel gained its first or lost its last subscriber on some shard.
    pub fn interest_changed(&self, channel: &Arc<str>) {
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel.clone());
        self.wake.notify_one();
    }

    fn take_dirty(&self) -> HashSet<Arc<str>> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Encodes and queues a relay message from this instance.
    pub fn send(
        &self,
        instance: &str,
        topic: Topic,
        kind: envelope::Kind,
        cause: Option<&str>,
        target: &str,
        payload: &[u8],
    ) -> bool {
        let bytes = envelope::encode(kind, instance, cause.unwrap_or(""), target, payload);
        self.push(Out::Envelope { topic, bytes })
    }

    fn take_receiver(&self) -> Option<tokio::sync::mpsc::Receiver<Out>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
