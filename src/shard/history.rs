//! History on one instance: each channel with history has one sequencer, its owner shard
//! (`hash(channel) % N`), which gives every publication the next offset, keeps the last
//! `history_size` of them for at most `history_ttl`, and fans them out. All of a channel's
//! publications leave the owner in offset order through FIFO inboxes, so every subscriber
//! sees increasing offsets.
//!
//! Recovery without gaps or duplicates: a subscribing connection first registers its
//! subscription (so the interest map sends it everything sequenced from then on), then asks
//! the owner for what it missed. Until the answer arrives, live publications for that
//! connection are dropped: they were sequenced before the owner read the request, so the
//! answer holds them. After it, anything at or below the answer's top offset is a
//! duplicate (`Catchup::After`).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::conn::{Catchup, Conn};
use super::core::Core;
use super::state::Recovery;
use crate::protocol::{self, Since};
use crate::route;
use crate::route::inbox::{AckTo, ConnRef, HistoryAnswer, HistoryTo, RecoverTo, ShardMsg};

/// May this live publication go to this connection now?
pub(super) fn passes(conn: &mut Conn, channel: &str, offset: Option<u64>) -> bool {
    let Some(i) = conn.catching_up.iter().position(|(c, _)| &**c == channel) else {
        return true;
    };
    match (conn.catching_up[i].1, offset) {
        // Frames without an offset (join, leave, status) are not in the history: never held.
        (_, None) => true,
        (Catchup::Pending, Some(_)) => false,
        (Catchup::After(top), Some(o)) if o <= top => false,
        (Catchup::After(_), Some(_)) => {
            // Past the answer: from here on every live publication is new.
            conn.catching_up.swap_remove(i);
            true
        }
    }
}

impl Core {
    /// Sends a publication on a channel with history to its sequencer (or sequences it here).
    pub(super) fn send_to_sequencer(
        &mut self,
        channel: &str,
        data: &str,
        from: Option<&str>,
        ack: Option<AckTo>,
    ) {
        let here = Some(self.index);
        if let Some(msg) = route::sequence(&self.shared, here, channel, data, from, ack, None) {
            self.handle(msg);
        }
    }

    /// The owner: the next offset, kept and fanned out; the offset to whoever asked.
    pub fn sequence(
        &mut self,
        channel: &Arc<str>,
        data: &str,
        from: Option<&str>,
        ack: Option<AckTo>,
        stamp: Option<Instant>,
    ) {
        let config = &self.shared.config;
        let (offset, frame) = self
            .logs
            .append(config, channel, data, from, Instant::now());
        let here = Some(self.index);
        if route::deliver(&self.shared, here, channel, &frame, Some(offset), stamp) {
            self.deliver(channel, &frame, Some(offset));
            self.stamps.extend(stamp);
        }
        match ack {
            Some(AckTo::Conn(to)) => self.to_conn(to, protocol::ack_offset(to.id, offset)),
            Some(AckTo::Control(tx)) => {
                let _ = tx.send(offset);
            }
            None => {}
        }
    }

    /// A frame for a connection that may live on another shard.
    pub fn to_conn(&mut self, to: ConnRef, frame: Bytes) {
        let here = Some(self.index);
        let Some(ShardMsg::ToConn { to, frame }) = route::to_conn(&self.shared, here, to, frame)
        else {
            return;
        };
        if self.conns.get(to.key).is_some_and(|c| c.id == to.conn) {
            self.send(to.key, frame);
        }
    }

    /// Subscribes to a channel with history: registered now, answered by the owner.
    pub(super) fn subscribe_with_history(
        &mut self,
        key: usize,
        id: Option<u64>,
        channel: &Arc<str>,
        since: Option<Since>,
    ) {
        let conn = &mut self.conns[key];
        conn.catching_up.retain(|(c, _)| c != channel);
        conn.catching_up.push((channel.clone(), Catchup::Pending));
        let to = RecoverTo::Conn(ConnRef {
            shard: self.index,
            key,
            conn: conn.id,
            id,
        });
        let here = Some(self.index);
        if let Some(msg) = route::ask_recovery(&self.shared, here, channel.clone(), since, to) {
            self.handle(msg);
        }
    }

    /// The owner: where the channel stands, and what was missed since `since`.
    pub fn recover(&mut self, channel: &Arc<str>, since: Option<Since>, to: RecoverTo) {
        let config = &self.shared.config;
        let Recovery {
            epoch,
            top,
            recovered,
            frames,
        } = self.logs.recover(config, channel, since, Instant::now());
        let msg = ShardMsg::Recovered {
            to,
            channel: channel.clone(),
            epoch,
            top,
            recovered,
            frames,
        };
        if let Some(msg) = route::answer(&self.shared, Some(self.index), to, msg) {
            self.handle(msg);
        }
    }

    /// The asking shard: a subscriber's answer, or its own stream's (`gaps`).
    pub fn recovered(
        &mut self,
        to: RecoverTo,
        channel: &Arc<str>,
        epoch: &Arc<str>,
        top: u64,
        recovered: Option<bool>,
        frames: Vec<(u64, Bytes)>,
    ) {
        match to {
            RecoverTo::Conn(to) => self.caught_up_conn(to, channel, epoch, top, recovered, frames),
            RecoverTo::Shard(_) => self.caught_up(channel, epoch, top, recovered, frames),
        }
    }

    /// The subscriber's shard: `subscribed`, what was missed, then live publications.
    fn caught_up_conn(
        &mut self,
        to: ConnRef,
        channel: &Arc<str>,
        epoch: &Arc<str>,
        top: u64,
        recovered: Option<bool>,
        frames: Vec<(u64, Bytes)>,
    ) {
        let live = |conn: &super::conn::Conn| {
            conn.id == to.conn && conn.catching_up.iter().any(|(c, _)| c == channel)
        };
        if !self.conns.get(to.key).is_some_and(live) {
            return; // gone, or unsubscribed meanwhile
        }
        // Where the channel stands is where this shard's stream stands from now on.
        self.joined(channel, epoch, top);
        let conn = &mut self.conns[to.key];
        if let Some(state) = conn.catching_up.iter_mut().find(|(c, _)| c == channel) {
            state.1 = Catchup::After(top);
        }
        self.send(
            to.key,
            protocol::subscribed(to.id, channel, top, epoch, recovered),
        );
        for (_, f) in frames {
            self.send(to.key, f);
        }
    }

    /// The owner: stored publications after `since`, at most `limit`.
    pub fn history_query(
        &mut self,
        channel: &Arc<str>,
        since: Option<u64>,
        limit: usize,
        to: HistoryTo,
    ) {
        let config = &self.shared.config;
        let now = Instant::now();
        let (epoch, publications) = self.logs.read(config, channel, since, limit, now);
        match to {
            HistoryTo::Conn(to) => {
                let frame = protocol::history(to.id, channel, &epoch, &publications);
                self.to_conn(to, frame);
            }
            HistoryTo::Control(tx) => {
                let _ = tx.send(HistoryAnswer {
                    epoch,
                    publications,
                });
            }
        }
    }
}
