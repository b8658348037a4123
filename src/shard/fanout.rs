//! Subscriptions, fan-out and the write path on a shard. A publication arrives as finished
//! frame bytes and is queued, as the same `Bytes`, to every local subscriber; other shards
//! get it through their inboxes (`route`) only when the interest map says they have
//! subscribers. Everything queued during a batch is written at its end, one vectored write
//! per connection (`flush_dirty`).

use bytes::Bytes;

use super::conn::{Conn, Queued, Stage};
use super::core::Core;
use super::deltas::Forms;
use super::variants::{Compression, Variants};
use crate::protocol::wire::Wire;
use crate::route;
use crate::telemetry::TraceParent;
use crate::ws::frame;

/// The outcome of a subscribe request.
#[derive(Debug, PartialEq, Eq)]
pub enum Subscribed {
    New,
    Already,
    LimitExceeded,
}

impl Core {
    /// Adds a local subscription (setting this shard's interest bit on the first one).
    pub(super) fn subscribe(&mut self, key: usize, channel: &str) -> Subscribed {
        let max = self.shared.config.max_subscriptions_per_connection;
        let conn = &self.conns[key];
        if conn.subs.iter().any(|c| &**c == channel) {
            return Subscribed::Already;
        }
        if conn.subs.len() >= max {
            return Subscribed::LimitExceeded;
        }
        let added = self.subscriptions.add(channel, key);
        if added.first {
            self.shared.add_interest(&added.name, self.index);
        }
        let subs = &mut self.conns[key].subs;
        // Most connections hold one or two subscriptions: room for one at first, not the
        // four a first push reserves (48 bytes per idle connection, PERFORMANCE.md).
        if subs.capacity() == 0 {
            subs.reserve_exact(1);
        }
        subs.push(added.name);
        Subscribed::New
    }

    /// Removes a subscription; false if there was none.
    pub(super) fn unsubscribe(&mut self, key: usize, channel: &str) -> bool {
        let subs = &mut self.conns[key].subs;
        let Some(i) = subs.iter().position(|c| &**c == channel) else {
            return false;
        };
        subs.swap_remove(i);
        self.conns[key].catching_up.retain(|(c, _)| &**c != channel);
        self.unsubscribe_local(key, channel);
        if let Some(user) = self.conns[key].phase.session().map(|s| s.user.clone()) {
            self.presence_remove(channel, &user);
        }
        true
    }

    /// Drops `key` from a channel's subscribers (clearing interest after the last one).
    pub(super) fn unsubscribe_local(&mut self, key: usize, channel: &str) {
        if self.deltas.any(channel) {
            self.deltas.leave(channel, key);
        }
        if self.subscriptions.remove(channel, key) {
            self.shared.remove_interest(channel, self.index);
            self.streams.remove(channel);
        }
    }

    /// Queues a publication's frame to this shard's subscribers of `channel`. On channels
    /// with history (`offset`), publications pass in offset order, gaps closed first
    /// (`gaps`).
    pub fn deliver(&mut self, channel: &str, frame: &Bytes, offset: Option<u64>) {
        if self.subscriptions.of(channel).is_none() {
            return;
        }
        match offset {
            Some(offset) => self.deliver_in_order(channel, frame, offset),
            None => self.fan_out(channel, frame, None),
        }
    }

    /// Queues the frame to every subscriber of `channel` here, in the subscriber's wire
    /// variant (each variant made once, `Variants`). `offset` keeps a catching-up
    /// subscriber from seeing a publication twice or before what it missed.
    pub(super) fn fan_out(&mut self, channel: &str, frame: &Bytes, offset: Option<u64>) {
        let limit = self.shared.config.send_queue_bytes;
        let Some(subscribers) = self.subscriptions.of(channel) else {
            return;
        };
        let compression = Compression::of(&self.shared.config);
        let mut variants = Variants::new(frame, compression);
        // Only where someone takes the channel as deltas is the frame read back.
        let payload = self.deltas.any(channel).then(|| frame::payload_of(frame));
        let mut forms = payload
            .as_ref()
            .and_then(|p| Forms::new(&self.deltas, channel, frame, p, compression));
        let (tag, conflate_at) = conflation(&self.shared.config, channel);
        let (mut slow, mut reached) = (Vec::new(), Vec::new());
        crate::metrics::local(|m| crate::metrics::bump(&m.deliveries, subscribers.len() as u64));
        for &key in subscribers {
            let conn = &mut self.conns[key];
            if conn.stage() != Stage::Open {
                continue;
            }
            if !conn.catching_up.is_empty() && !super::history::passes(conn, channel, offset) {
                continue;
            }
            let wire = conn.wire;
            let picked = forms
                .as_mut()
                .and_then(|f| f.pick(&self.deltas, channel, key, wire));
            let (mut frame, in_step) = match picked {
                Some(picked) => picked,
                None => (variants.get(wire).clone(), false),
            };
            // A state channel's subscriber behind: the newest replaces what it has queued
            // of the channel, whole if the replaced frames carried its deltas.
            if tag != 0 && conn.queued_bytes() + frame.len() > conflate_at {
                if let (true, Some(forms)) = (conn.conflate(tag) > 0 && in_step, &mut forms) {
                    frame = forms.full(wire);
                }
            }
            match queue(conn, &mut self.dirty, key, frame, limit, tag) {
                Queued::Overflow => slow.push(key),
                Queued::Ok if in_step => reached.push(key),
                Queued::Ok => {}
            }
        }
        if let Some(forms) = forms {
            forms.finish(&mut self.deltas, channel, &reached);
        }
        for key in slow {
            self.slow_consumer(key);
        }
    }

    /// Queues a direct message's frame to every local connection of `user`.
    pub fn deliver_to_user(&mut self, user: &str, frame: &Bytes) {
        let keys = self.users.conns(user).to_vec();
        crate::metrics::local(|m| crate::metrics::bump(&m.deliveries, keys.len() as u64));
        self.send_each(&keys, frame);
    }

    /// Queues one frame to several connections, each in its wire variant, each variant
    /// made once.
    pub(super) fn send_each(&mut self, keys: &[usize], frame: &Bytes) {
        let mut variants = Variants::new(frame, Compression::of(&self.shared.config));
        for &key in keys {
            let wire = self.conns[key].wire;
            self.send_as_is(key, variants.get(wire).clone());
        }
    }

    /// A publication on a channel without history: to every shard with subscribers (this
    /// one included) and to the other instances. The frame is made only when someone may
    /// receive it.
    pub(super) fn publish(&mut self, channel: &str, frame: impl FnOnce() -> Bytes) {
        self.publish_traced(channel, frame, None);
    }

    /// [`Core::publish`] of a client's publication that carried a `traceparent`.
    pub(super) fn publish_traced(
        &mut self,
        channel: &str,
        frame: impl FnOnce() -> Bytes,
        parent: Option<TraceParent>,
    ) {
        let here = Some(self.index);
        if let Some(frame) = route::publish(&self.shared, here, channel, frame, parent) {
            self.deliver(channel, &frame, None);
        }
    }

    /// Sends a direct message to the shard of `user` (delivered here when it is this one).
    pub(super) fn send_to_user(&mut self, user: &str, frame: Bytes) {
        if let Some(frame) = route::send(&self.shared, Some(self.index), user, frame) {
            self.deliver_to_user(user, &frame);
        }
    }

    /// Queues a frame made as JSON for a connection, in the connection's wire variant
    /// (flushed at the end of the batch). A queue over `send_queue_bytes` makes the
    /// connection a slow consumer: closed with 4009.
    pub fn send(&mut self, key: usize, frame: Bytes) {
        let wire = self.conns[key].wire;
        let frame = match wire {
            Wire::JSON => frame,
            _ => Variants::new(&frame, Compression::of(&self.shared.config))
                .get(wire)
                .clone(),
        };
        self.send_as_is(key, frame);
    }

    /// Queues bytes already in the connection's variant.
    fn send_as_is(&mut self, key: usize, frame: Bytes) {
        let limit = self.shared.config.send_queue_bytes;
        let conn = &mut self.conns[key];
        if conn.stage() == Stage::Closing || conn.done {
            return;
        }
        match queue(conn, &mut self.dirty, key, frame, limit, 0) {
            Queued::Ok => {}
            Queued::Overflow => self.slow_consumer(key),
        }
    }

    pub(super) fn slow_consumer(&mut self, key: usize) {
        crate::metrics::local(|m| crate::metrics::bump(&m.slow_consumers, 1));
        tracing::info!(conn = %format_args!("{:x}", self.conns[key].id), queued = self.conns[key].queued_bytes(), "slow consumer");
        self.conns[key].discard_queue();
        self.close(key, 4009, "slow consumer");
    }

    /// Writes what is queued for connection `key` now (an entry of it left in the dirty
    /// list is skipped by the next flush).
    pub(super) fn write_now(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key).filter(|c| c.dirty) {
            conn.answering = false;
            conn.write_out(&self.pace);
        }
    }

    /// Writes what is queued for every connection in the dirty list, paced or not (`pace`):
    /// the rare events that want their frames out at once. (A connection waiting for its
    /// interval is not in the list; it is written by the pacing timer, or as it leaves.)
    pub fn flush_dirty(&mut self) {
        for key in std::mem::take(&mut self.dirty) {
            if let Some(conn) = self.conns.get_mut(key).filter(|c| c.dirty) {
                conn.answering = false;
                conn.write_out(&self.pace);
            }
        }
    }

    /// The end of an inbox batch: write what is due (`pace`), then time the API
    /// publications handled in it (publish-to-write).
    pub fn end_batch(&mut self) {
        self.flush_paced();
        if !self.stamps.is_empty() {
            let latency = &self.shared.metrics.publish_to_write;
            latency.record_many(self.index, self.stamps.drain(..).map(|s| s.elapsed()));
        }
    }
}

pub(super) fn mark_dirty(conn: &mut Conn, dirty: &mut Vec<usize>, key: usize) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(key);
    }
}

/// Queues `frame` for the connection at slab `key` and lists it for the next flush; `tag`:
/// its channel's conflation tag, or 0.
pub(super) fn queue(
    conn: &mut Conn,
    dirty: &mut Vec<usize>,
    key: usize,
    frame: Bytes,
    limit: usize,
    tag: u64,
) -> Queued {
    let q = conn.queue_tagged(frame, limit, tag);
    if q == Queued::Ok {
        mark_dirty(conn, dirty, key);
    }
    q
}

/// A channel's conflation tag (non-zero, from its name) and the queued bytes past which a
/// publication replaces the queued ones of the channel; 0 when its namespace does not
/// conflate.
fn conflation(config: &crate::Config, channel: &str) -> (u64, usize) {
    if !config.namespace(channel).conflate {
        return (0, usize::MAX);
    }
    use std::hash::{BuildHasher, BuildHasherDefault};
    let hasher = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    (hasher.hash_one(channel) | 1, config.conflate_queue_bytes)
}
