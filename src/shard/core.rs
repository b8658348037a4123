//! A shard's state (its connections and the owned parts of `state`) and the life of its
//! connections: accept, hand-off, open, close, removal. Timers are in `timers.rs`,
//! requests in `requests.rs`, fan-out and writes in `fanout.rs`.

use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;
use rand::Rng;
use slab::Slab;

use super::conn::{Conn, Phase, Session, Stage};
use super::fanout::mark_dirty;
use super::state::{Logs, Presence, Streams, Subscriptions, TimerKind, Timers, Users};
use crate::limits::Rate;
use crate::protocol;
use crate::route::inbox::{Detached, Handoff};
use crate::shared::Shared;
use crate::ws::frame;

/// What the reactor does with a connection after its input was handled.
pub enum Step {
    Continue,
    /// Drop the socket.
    Exit,
    /// Send the socket to this shard, with the connection's state (boxed: a step is
    /// returned on every read, a hand-off once per connection).
    Handoff(usize, Box<Handoff>),
}

/// A shard's state: its connections and the owned parts of `state`, composed. The parts'
/// fields are theirs; `Core` changes them only through their methods.
pub struct Core {
    pub shared: Arc<Shared>,
    pub index: usize,
    pub conns: Slab<Conn>,
    pub(super) subscriptions: Subscriptions,
    pub(super) users: Users,
    pub(super) presence: Presence,
    /// Channels with history this shard sequences.
    pub(super) logs: Logs,
    /// Where each channel with history stands on this shard (gaps, see `gaps`).
    pub(super) streams: Streams,
    /// The channels some subscribers here take as deltas.
    pub(super) deltas: super::state::Deltas,
    /// A `StreamsRetry` timer is set.
    pub(super) stream_retry_due: bool,
    pub(super) timers: Timers,
    /// Connections with output queued since the last flush.
    pub(super) dirty: Vec<usize>,
    /// Writes at most once per `write_interval` per connection.
    pub(super) pace: super::pace::Pacer,
    pub accept_waker: Option<Waker>,
    pub draining: bool,
    next_id: u64,
    /// The mutes of this shard's users.
    pub(super) mutes: crate::mutes::Mutes,
    /// This shard's copy of the revocation rules.
    pub(super) revoked: crate::revocation::Revocations,
    /// Per connection with `rpc` calls waiting: dropped when it goes, which tells the
    /// calls to stop waiting.
    pub(super) rpc_gone: std::collections::HashMap<u64, tokio::sync::watch::Sender<()>>,
    /// `rpc` calls made on this shard (for request ids).
    pub(super) rpc_calls: u64,
    /// Arrival times of the API publications handled in this batch (recorded after the flush).
    pub stamps: Vec<Instant>,
    /// Tokens found in the token store (`connect.rs`).
    pub(super) tokens: super::state::Tokens,
    /// Connections the store or the connect proxy vouched for, waiting for their task to
    /// carry on (key, connection id, identity).
    pub(super) authed: Vec<(usize, u64, Box<crate::auth::Identity>)>,
    /// The `connect_proxy_headers` of connections waiting for their `auth` frame.
    pub(super) held_headers: std::collections::HashMap<u64, Vec<(String, String)>>,
}

impl Core {
    pub fn new(shared: Arc<Shared>, index: usize) -> Core {
        let c = &shared.config;
        let rate = Rate::new(c.messages_per_second, c.burst);
        let logs = Logs::new(shared.epoch.clone());
        let tokens = super::state::Tokens::new(c.token_cache_ttl, c.token_cache_entries);
        let pace = super::pace::Pacer::new(c.write_interval);
        Core {
            shared,
            index,
            conns: Slab::new(),
            subscriptions: Subscriptions::default(),
            users: Users::new(rate),
            presence: Presence::default(),
            logs,
            streams: Streams::default(),
            deltas: Default::default(),
            stream_retry_due: false,
            timers: Timers::new(Instant::now()),
            dirty: Vec::new(),
            pace,
            accept_waker: None,
            draining: false,
            next_id: 0,
            revoked: Default::default(),
            mutes: Default::default(),
            stamps: Vec::new(),
            rpc_gone: Default::default(),
            rpc_calls: 0,
            tokens,
            authed: Vec::new(),
            held_headers: Default::default(),
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        ((self.index as u64) << 56) | self.next_id
    }

    /// A freshly accepted socket: read its HTTP request head, within `handshake_timeout`.
    pub fn accepted(&mut self, socket: TcpStream, peer: std::net::SocketAddr) -> usize {
        let id = self.new_id();
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        entry.insert(Conn::new(id, key, socket, peer, Instant::now()));
        self.schedule(
            key,
            self.shared.config.handshake_timeout,
            TimerKind::Handshake,
        );
        key
    }

    /// A connection handed over by another shard: it becomes open here.
    /// The reactor registers its socket first (`reactor::adopt`): opening may queue frames.
    pub fn adopt(&mut self, socket: TcpStream, d: Detached) -> usize {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut conn = Conn::new(d.id, key, socket, d.peer, d.accepted_at);
        conn.phase = Phase::AwaitAuth;
        conn.decoder = d.decoder;
        conn.client = d.client;
        conn.request_id = d.request_id;
        conn.counted = d.counted;
        conn.wire = d.wire;
        conn.restore_unsent(d.unsent);
        conn.tls = d.tls;
        entry.insert(conn);
        self.open(key, d.identity);
        self.flush_dirty();
        key
    }

    /// Authentication succeeded: open the connection here, or send it to its user's shard.
    pub(super) fn authenticated(
        &mut self,
        key: usize,
        identity: Box<crate::auth::Identity>,
    ) -> Step {
        let target = self.shared.shard_of(identity.user());
        if target == self.index {
            self.open(key, identity);
            return Step::Continue;
        }
        // What is still queued (usually the 101) goes along and leaves with `welcome` in one
        // write: one wakeup of the client instead of two.
        let Some(unsent) = self.conns[key].take_unsent() else {
            self.conns[key].done = true;
            return Step::Exit;
        };
        let conn = self.conns.remove(key);
        Step::Handoff(
            target,
            Box::new(Handoff {
                socket: conn.socket,
                detached: Detached {
                    id: conn.id,
                    decoder: conn.decoder,
                    identity,
                    client: conn.client,
                    request_id: conn.request_id,
                    peer: conn.peer,
                    counted: conn.counted,
                    accepted_at: conn.accepted_at,
                    wire: conn.wire,
                    unsent,
                    tls: conn.tls,
                    tls_backlog: Vec::new(),
                },
            }),
        )
    }

    /// Registers an authenticated connection on its user's shard and welcomes it.
    fn open(&mut self, key: usize, identity: Box<crate::auth::Identity>) {
        let shared = self.shared.clone();
        let config = &shared.config;
        let now = Instant::now();
        let leeway = config.jwt_leeway.as_secs();
        if self
            .revoked
            .check(&identity, crate::auth::unix_now(), leeway)
        {
            // Revoked while it moved between shards.
            self.close(key, 4004, "token revoked");
            return;
        }
        let max = config.max_connections_per_user;
        let Some(user) = self.users.register(identity.user(), key, max, now) else {
            self.close(key, 4003, "too many connections for this user");
            return;
        };
        let ping = config.ping_interval;
        let welcome = protocol::welcome(&protocol::Welcome {
            id: self.conns[key].request_id,
            kind: "welcome",
            conn: &format!("{:x}", self.conns[key].id),
            user: &user,
            instance: &self.shared.instance,
            shard: self.index,
            ping_interval_ms: ping.as_millis() as u64,
            expires_at: identity.expires_at,
        });
        let conn = &mut self.conns[key];
        conn.phase = Phase::Open(Session {
            user: user.clone(),
            identity: Rc::from(identity),
        });
        conn.last_seen = now;
        let (client, peer, id) = (conn.client.clone(), conn.peer, conn.id);
        let waited = conn.accepted_at.elapsed();
        self.shared.shard_connections[self.index].fetch_add(1, Ordering::Relaxed);
        crate::metrics::local(|m| crate::metrics::bump(&m.connects, 1));
        self.shared
            .metrics
            .connect_to_welcome
            .record(self.index, waited);
        tracing::info!(conn = %format_args!("{id:x}"), user = %user,
            shard = self.index, instance = %self.shared.instance, client = client.as_deref().unwrap_or(""), %peer, "connection opened");
        self.send(key, welcome);
        self.session_event(key, true);
        // Spread first pings over the interval so that a connect storm does not ping in step.
        let first = ping.mul_f64(rand::rng().random_range(0.5..1.0));
        self.schedule(key, first, TimerKind::Ping);
        self.schedule(key, ping + config.pong_timeout, TimerKind::Liveness);
        self.schedule_expiry(key);
        // Frames that arrived with the handshake or before a hand-off.
        if self.conns[key].decoder.has_pending() {
            let _ = self.on_frames(key, &mut []);
        }
        // The welcome (with the 101 before it) leaves now, not at the end of the pass: a new
        // connection has nothing else coming in this pass, and in a connect storm a pass
        // opens hundreds; at its end they would all have waited for the last one.
        self.write_now(key);
    }

    /// Starts the closing handshake with `code`; the socket is dropped when the peer answers,
    /// or after `close_timeout`.
    pub fn close(&mut self, key: usize, code: u16, reason: &str) {
        let conn = &mut self.conns[key];
        if conn.stage() == Stage::Closing || conn.done {
            return;
        }
        conn.phase.close();
        conn.close_code = Some(code);
        let _ = conn.queue(frame::close(code, reason), usize::MAX);
        conn.finish_after_flush();
        mark_dirty(conn, &mut self.dirty, key);
        self.schedule(key, self.shared.config.close_timeout, TimerKind::Linger);
    }

    /// Answers the HTTP request with `response` and closes after it.
    pub(super) fn answer_http(&mut self, key: usize, response: Vec<u8>) {
        let conn = &mut self.conns[key];
        conn.phase.close();
        let _ = conn.queue(Bytes::from(response), usize::MAX);
        conn.finish_after_flush();
        mark_dirty(conn, &mut self.dirty, key);
        self.schedule(key, self.shared.config.close_timeout, TimerKind::Linger);
    }

    /// Forgets a connection; its socket closes with its record.
    pub fn remove(&mut self, key: usize) {
        if self.conns[key].phase.session().is_some() {
            self.session_event(key, false);
        }
        let mut conn = self.conns.remove(key);
        if conn.dirty {
            // Queued and not yet written (paced, `pace`): its last chance.
            conn.flush();
        }
        if !self.rpc_gone.is_empty() {
            self.rpc_gone.remove(&conn.id);
        }
        if !self.held_headers.is_empty() {
            self.held_headers.remove(&conn.id);
        }
        if !self.authed.is_empty() {
            self.authed.retain(|(_, id, _)| *id != conn.id);
        }
        let unsent = conn.queued_bytes() as u64;
        crate::metrics::local(|m| crate::metrics::bump(&m.bytes_discarded, unsent));
        let user = conn.phase.session().map(|s| &s.user);
        for channel in &conn.subs {
            self.unsubscribe_local(key, channel);
            if let Some(user) = user {
                self.presence_remove(channel, user);
            }
        }
        if let Some(user) = user {
            self.users.unregister(user, key);
            self.shared.shard_connections[self.index].fetch_sub(1, Ordering::Relaxed);
            let code = conn.close_code.unwrap_or(1006);
            crate::metrics::local(|m| m.close(code));
            tracing::info!(conn = %format_args!("{:x}", conn.id), user = %user, shard = self.index,
                instance = %self.shared.instance, code, duration_ms = conn.accepted_at.elapsed().as_millis() as u64,
                correlation_id = conn.cause.as_deref(), "connection closed");
        }
        if conn.counted {
            self.shared.uncount_connection(conn.peer.ip());
        }
    }
}
