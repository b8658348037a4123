//! One lock-free inbox per shard: how shards (and the control plane) talk to a shard.
//!
//! A crossbeam channel carries the messages; the wakeup is an [`AtomicWaker`] plus an `idle`
//! flag. A busy shard never sets `idle`, so senders pay one atomic load and nothing else; an
//! idle shard sleeps in its runtime (io_uring or epoll wait) and is woken by the first sender
//! only — no polling, no timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};

use crate::auth::Identity;
use crate::protocol::PresenceUser;
use crate::revocation::Rule;
use crate::ws::decoder::Decoder;

/// Everything one shard asks of another: the one message type of the shard mesh.
pub enum ShardMsg {
    /// Take over an authenticated connection whose user hashes to this shard.
    Adopt(Box<Handoff>),
    /// Deliver a publication's frame to this shard's subscribers of `channel`. `stamp`: when
    /// the server API received it (for the publish-to-write histogram).
    Publish {
        channel: Arc<str>,
        frame: Bytes,
        stamp: Option<Instant>,
        /// The publication's offset, on channels with history.
        offset: Option<u64>,
    },
    /// Sequence a publication on a channel with history: sent to the channel's owner shard,
    /// which gives it the next offset, keeps it, and fans it out.
    Sequence {
        channel: Arc<str>,
        data: Box<str>,
        from: Option<Arc<str>>,
        ack: Option<AckTo>,
        stamp: Option<Instant>,
    },
    /// To the owner shard: where the channel stands, and what a subscriber (or a shard's
    /// stream, closing a gap) missed since `since` (answered with `Recovered`).
    Recover {
        channel: Arc<str>,
        since: Option<crate::protocol::Since>,
        to: RecoverTo,
    },
    /// The owner's answer to `Recover`: the `message` frames after `since` with their
    /// offsets, oldest first. An empty `epoch`: the sequencer was away.
    Recovered {
        to: RecoverTo,
        channel: Arc<str>,
        epoch: Arc<str>,
        top: u64,
        recovered: Option<bool>,
        frames: Vec<(u64, Bytes)>,
    },
    /// The relay (re)subscribed to Redis: publications may have gone unheard meanwhile,
    /// so the shard's streams on channels with history check for gaps.
    Resumed,
    /// To the owner shard: stored publications after `since`.
    History {
        channel: Arc<str>,
        since: Option<u64>,
        limit: usize,
        to: HistoryTo,
    },
    /// A frame for one connection (an `ack` with its offset, a `history` answer).
    ToConn { to: ConnRef, frame: Bytes },
    /// One of the connection's `rpc` calls ended; its answer, if the client gets one.
    RpcDone { to: ConnRef, frame: Option<Bytes> },
    /// A proxy answered (or failed) a connection's subscribe or publish.
    ProxyDone {
        to: ConnRef,
        purpose: crate::route::rpc_queue::Purpose,
        verdict: crate::route::rpc_queue::Verdict,
    },
    /// The connect proxy or the token store answered about a connection's credential (at
    /// connect, or for a `refresh`); `cache`: the token's digest, when the store found it.
    ConnectDone {
        to: ConnRef,
        refresh: bool,
        cache: Option<[u8; 32]>,
        result: Result<Box<Identity>, crate::auth::opaque::Refusal>,
    },
    /// Deliver a direct message's frame to every connection of `user` on this shard.
    Direct { user: Arc<str>, frame: Bytes },
    /// Deliver a frame to every open connection of this shard.
    BroadcastAll { frame: Bytes },
    /// Close every connection of `user` with 4004; answers how many.
    Disconnect {
        user: Arc<str>,
        reason: Arc<str>,
        cause: Cause,
        reply: Option<Reply<usize>>,
    },
    /// Add a revocation rule and close the connections it matches with 4004.
    Revoke {
        rule: Arc<Rule>,
        cause: Cause,
        reply: Option<Reply<Revoked>>,
    },
    /// Server-side subscription (or unsubscription) of all of `user`'s connections here;
    /// answers how many connections changed.
    Subscription {
        user: Arc<str>,
        channel: Arc<str>,
        subscribe: bool,
        cause: Cause,
        reply: Option<Reply<usize>>,
    },
    /// The relay appended (or failed to append) a connection's `event` to the ingress stream.
    IngressDone {
        key: usize,
        conn: u64,
        id: Option<u64>,
        ok: bool,
    },
    /// Asks for this shard's part of a channel's presence.
    PresenceQuery { channel: Arc<str>, to: PartTo },
    /// A shard's part of the presence query `query`.
    PresencePart {
        query: u64,
        users: Vec<crate::protocol::PresenceUser>,
    },
    /// Keep (or replace) a mute of one of this shard's users.
    Mute(Box<crate::mutes::Mute>),
    /// Lift a user's mute of `scope` (`Mute::scope`); answers whether there was one.
    Unmute {
        user: Arc<str>,
        scope: String,
        reply: Option<Reply<bool>>,
    },
    /// This shard's mutes in force.
    Mutes {
        reply: Reply<Vec<crate::mutes::Mute>>,
    },
    /// Stop accepting, send `reconnect` (jittered up to `jitter_ms`), close with 1001.
    Drain { jitter_ms: u64 },
    /// Leave the runtime (after a drain, or at once).
    Stop,
}

/// Where an answer goes: a one-shot channel, usable from any thread and any runtime.
pub type Reply<T> = tokio::sync::oneshot::Sender<T>;

/// The correlation id of the API or client request that caused an action, for the logs.
pub type Cause = Option<Arc<str>>;

/// What a shard did for a revocation.
#[derive(Debug, Default, Clone, Copy)]
pub struct Revoked {
    pub closed: usize,
    /// The latest `exp` among the matching tokens seen (so a `jti` rule can be forgotten then).
    pub seen_exp: Option<u64>,
}

/// A connection's request, wherever it lives: the shard, slab key, id (to tell a reused
/// slot) and the request's `id`.
#[derive(Debug, Clone, Copy)]
pub struct ConnRef {
    pub shard: usize,
    pub key: usize,
    pub conn: u64,
    pub id: Option<u64>,
}

/// Who asked for a recovery: a subscribing connection, or a shard's stream of the channel.
#[derive(Debug, Clone, Copy)]
pub enum RecoverTo {
    Conn(ConnRef),
    Shard(usize),
}

impl RecoverTo {
    /// The shard the answer goes to.
    pub fn shard(&self) -> usize {
        match self {
            RecoverTo::Conn(to) => to.shard,
            RecoverTo::Shard(shard) => *shard,
        }
    }
}

/// Where the offset of a sequenced publication goes.
pub enum AckTo {
    Conn(ConnRef),
    Control(Reply<u64>),
}

/// A channel's stored publications, for the server API.
pub struct HistoryAnswer {
    pub epoch: Arc<str>,
    /// The JSON array of publications.
    pub publications: String,
}

/// Where a history answer goes.
pub enum HistoryTo {
    Conn(ConnRef),
    Control(Reply<HistoryAnswer>),
}

/// Where a shard sends its part of a presence query.
pub enum PartTo {
    /// Another shard, gathering for a client's request.
    Shard { shard: usize, query: u64 },
    /// The control plane (server API).
    Control(Reply<Vec<PresenceUser>>),
}

/// An authenticated connection moving between shards: the socket and everything read from it.
pub struct Handoff {
    pub socket: std::net::TcpStream,
    pub detached: Detached,
}

/// A connection's state without its socket, as it leaves one shard for another.
pub struct Detached {
    pub id: u64,
    pub decoder: Decoder,
    pub identity: Box<Identity>,
    pub client: Option<Box<str>>,
    pub request_id: Option<u64>,
    pub peer: std::net::SocketAddr,
    /// Already counted against `max_connections`.
    pub counted: bool,
    pub accepted_at: std::time::Instant,
    /// What it speaks, negotiated at the upgrade.
    pub wire: crate::protocol::wire::Wire,
    /// Frames queued on the shard that authenticated it and not yet written (the 101).
    pub unsent: Vec<bytes::Bytes>,
    /// A TLS connection's session, with any ciphertext read but not yet given to it.
    pub tls: Option<Box<rustls::ServerConnection>>,
    pub tls_backlog: Vec<u8>,
}

pub struct Inbox {
    tx: Sender<ShardMsg>,
    rx: Receiver<ShardMsg>,
    waker: AtomicWaker,
    idle: AtomicBool,
}

impl Default for Inbox {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Inbox {
            tx,
            rx,
            waker: AtomicWaker::new(),
            idle: AtomicBool::new(false),
        }
    }
}

impl Inbox {
    /// Queues a message and wakes the shard if it sleeps.
    pub fn send(&self, msg: ShardMsg) {
        // The receiver lives as long as the inbox, so sending cannot fail.
        let _ = self.tx.send(msg);
        if self.idle.load(Ordering::SeqCst) && self.idle.swap(false, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// Messages waiting (for the metrics).
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Takes one message if there is one.
    pub fn try_recv(&self) -> Option<ShardMsg> {
        self.rx.try_recv().ok()
    }

    /// Resolves when a message is waiting (the shard then drains a batch with `try_recv`).
    pub fn ready(&self) -> Ready<'_> {
        Ready { inbox: self }
    }
}

pub struct Ready<'a> {
    inbox: &'a Inbox,
}

impl Future for Ready<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inbox = self.inbox;
        if !inbox.rx.is_empty() {
            return Poll::Ready(());
        }
        inbox.waker.register(cx.waker());
        inbox.idle.store(true, Ordering::SeqCst);
        // A sender that queued before seeing `idle` is caught by this second look.
        if !inbox.rx.is_empty() {
            inbox.idle.store(false, Ordering::SeqCst);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
