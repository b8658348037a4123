//! The relay's queue: what shards and the server API hand to the Redis relay, and the
//! relay's state they read (is Redis up, the other instances, the counters). It lives in
//! the routing layer so that shards and services reach the relay through a queue, never by
//! calling the relay: the relay (`crate::relay`, a service on the control thread) drains it.
//!
//! The queue is bounded and never blocks a shard: what does not fit is dropped and
//! counted, and whoever waits for an answer is refused at once (`push_or_refuse`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::inbox::{AckTo, HistoryTo, RecoverTo, ShardMsg};
use crate::protocol::envelope::{self, Kind};
use crate::protocol::{self, PresenceUser, Since};
use crate::shared::Shared;

/// Where a relay message is published.
pub enum Topic {
    /// `ch.<channel>`: the channel's subscribers on other instances.
    Channel(Arc<str>),
    /// `cluster`: every other instance.
    Cluster,
    /// `reply.<instance>`: one instance's presence query.
    Reply(Box<str>),
}

/// What leaves the instance through the relay.
pub enum Out {
    Envelope {
        topic: Topic,
        bytes: Bytes,
        /// A client's `traceparent` (its publish frame's), for the relay's batch span; only
        /// when traces are on.
        parent: Option<crate::telemetry::TraceParent>,
    },
    /// A user's presence on this instance began (`joined`) or ended: `join` / `leave` is
    /// announced when it is the user's first / last instance in the channel.
    Transition {
        channel: Arc<str>,
        user: Arc<str>,
        info: Box<str>,
        joined: bool,
    },
    /// A publication on a channel with history: sequenced by Redis (`relay/history.rs`).
    Sequence(Append),
    /// Where a subscription (or a shard's stream) on a channel with history stands, and
    /// what it missed.
    Recover {
        channel: Arc<str>,
        since: Option<Since>,
        to: RecoverTo,
    },
    /// Stored publications of a channel.
    History {
        channel: Arc<str>,
        since: Option<u64>,
        limit: usize,
        to: HistoryTo,
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
    /// A webhook event given up after its last attempt: an entry (field/value pairs) for
    /// the dead-letter stream `<prefix>webhooks-dead`.
    DeadLetter { fields: Vec<(&'static str, String)> },
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
pub struct RelayQueue {
    tx: tokio::sync::mpsc::Sender<Out>,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<Out>>>,
    /// Channels whose local interest changed since the relay last looked.
    dirty: Mutex<HashSet<Arc<str>>>,
    /// Notified when `dirty` gains a channel.
    pub wake: tokio::sync::Notify,
    pub stats: Stats,
    capacity: usize,
    /// Other live instances, from the heartbeat hash (refreshed every second).
    pub peers: Mutex<Vec<Peer>>,
    /// This instance's presence queries waiting for the others' answers.
    pub queries: RemoteQueries,
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

impl RelayQueue {
    pub fn new(capacity: usize) -> RelayQueue {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        RelayQueue {
            tx,
            rx: Mutex::new(Some(rx)),
            dirty: Mutex::new(HashSet::new()),
            wake: tokio::sync::Notify::new(),
            stats: Stats::default(),
            capacity: capacity.max(1),
            peers: Mutex::new(Vec::new()),
            queries: RemoteQueries::default(),
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
    pub fn push_or_refuse(&self, shared: &Shared, out: Out) {
        if let Err(e) = self.tx.try_send(out) {
            let out = match e {
                tokio::sync::mpsc::error::TrySendError::Full(o)
                | tokio::sync::mpsc::error::TrySendError::Closed(o) => o,
            };
            refuse(shared, out);
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

    /// The channels whose interest changed since the last call.
    pub fn take_dirty(&self) -> HashSet<Arc<str>> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Encodes and queues a relay message from this instance.
    pub fn send(
        &self,
        instance: &str,
        topic: Topic,
        kind: Kind,
        cause: Option<&str>,
        target: &str,
        payload: &[u8],
    ) -> bool {
        let bytes = envelope::encode(kind, instance, cause.unwrap_or(""), target, payload);
        self.push(Out::Envelope {
            topic,
            bytes,
            parent: None,
        })
    }

    /// The receiving end, for the relay (taken once).
    pub fn take_receiver(&self) -> Option<tokio::sync::mpsc::Receiver<Out>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A publication waiting to be sequenced by Redis.
pub struct Append {
    pub channel: Arc<str>,
    pub data: Box<str>,
    pub from: Option<Arc<str>>,
    pub ack: Option<AckTo>,
}

/// A message that could not be queued (or was lost with the link): counted, and whoever
/// waits for its answer hears at once that Redis cannot be reached.
pub fn refuse(shared: &Shared, out: Out) {
    if let Some(relay) = &shared.relay {
        relay.stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
    answer_unavailable(shared, out);
}

/// Whoever waits for the answer to `out` hears that Redis cannot be reached: an ingress
/// request or a history read is answered `unavailable`, a subscription as having nothing to
/// recover from, a presence query gets an empty remote part.
pub fn answer_unavailable(shared: &Shared, out: Out) {
    const AWAY: &str = "history is unavailable (Redis is not reachable)";
    match out {
        Out::Ingress { ack: Some(ack), .. } => ack.answer(shared, false),
        // An API caller's channel is dropped with the message: it answers 503.
        Out::Sequence(Append {
            ack: Some(AckTo::Conn(to)),
            ..
        })
        | Out::History {
            to: HistoryTo::Conn(to),
            ..
        } => {
            let frame = protocol::error(to.id, protocol::ErrorCode::Unavailable, AWAY);
            let _ = super::to_conn(shared, None, to, frame);
        }
        // Answered as having nothing to recover from, with no epoch: the sequencer is away.
        Out::Recover { channel, since, to } => {
            let msg = ShardMsg::Recovered {
                to,
                channel,
                epoch: "".into(),
                top: 0,
                recovered: since.map(|_| false),
                frames: Vec::new(),
            };
            let _ = super::answer(shared, None, to, msg);
        }
        Out::Presence { shard, query, .. } => shared.send(
            shard,
            ShardMsg::PresencePart {
                query,
                users: Vec::new(),
            },
        ),
        _ => {}
    }
}

impl IngressAck {
    /// Tells the connection's shard whether Redis took the entry.
    pub fn answer(self, shared: &Shared, ok: bool) {
        shared.send(
            self.shard,
            ShardMsg::IngressDone {
                key: self.key,
                conn: self.conn,
                id: self.id,
                ok,
            },
        );
    }
}

/// This instance's presence queries to the other instances, waiting for their answers.
#[derive(Default)]
pub struct RemoteQueries {
    waiting: Mutex<HashMap<u64, Waiting>>,
    next: AtomicU64,
}

/// One query's answers so far.
pub struct Waiting {
    pub expected: usize,
    pub answered: usize,
    pub users: Vec<PresenceUser>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RemoteQueries {
    /// Registers a query expecting `expected` answers; the receiver fires with the last.
    pub fn start(&self, expected: usize) -> (u64, tokio::sync::oneshot::Receiver<()>) {
        let query = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiting = Waiting {
            expected,
            answered: 0,
            users: Vec::new(),
            done: Some(tx),
        };
        self.lock().insert(query, waiting);
        (query, rx)
    }

    /// One instance's answer to `query` (ignored once the query is over).
    pub fn answer(&self, query: u64, users: Vec<PresenceUser>) {
        let mut waiting = self.lock();
        let Some(w) = waiting.get_mut(&query) else {
            return;
        };
        w.users.extend(users);
        w.answered += 1;
        if w.answered >= w.expected {
            if let Some(done) = w.done.take() {
                let _ = done.send(());
            }
        }
    }

    /// Ends a query: what arrived.
    pub fn finish(&self, query: u64) -> Option<Waiting> {
        self.lock().remove(&query)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}
