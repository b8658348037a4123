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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::{Catchup, Conn};
use super::core::Core;
use crate::protocol::{self, Publication, Since};
use crate::route;
use crate::route::inbox::{AckTo, ConnRef, HistoryAnswer, HistoryTo, ShardMsg};

/// One kept publication.
pub(super) struct Stored {
    offset: u64,
    ts: u64,
    at: Instant,
    from: Option<Arc<str>>,
    data: Box<str>,
    frame: Bytes,
}

/// A channel's history on its owner shard.
pub(super) struct Log {
    top: u64,
    entries: VecDeque<Stored>,
    /// Made with the log: a log dropped while idle and made again has another epoch, so
    /// offsets from before cannot be mistaken for the new ones.
    epoch: Arc<str>,
    used: Instant,
}

/// Logs are swept every this many history operations on a shard.
const SWEEP_EVERY: u64 = 1024;
/// An empty log untouched this long is dropped by the sweep.
const IDLE: Duration = Duration::from_secs(600);

pub(super) type Logs = HashMap<Arc<str>, Log>;

impl Log {
    /// Empty, and unused for `idle`: the sweep drops it.
    fn dead(&self, now: Instant, idle: Duration) -> bool {
        self.entries.is_empty() && now.duration_since(self.used) > idle
    }

    /// Drops what is over `size` or older than `ttl`.
    fn trim(&mut self, size: usize, ttl: Option<Duration>, now: Instant) {
        while self.entries.len() > size {
            self.entries.pop_front();
        }
        if let Some(ttl) = ttl {
            while self
                .entries
                .front()
                .is_some_and(|e| now.duration_since(e.at) > ttl)
            {
                self.entries.pop_front();
            }
        }
    }
}

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
    /// The channel's log (made, with a new epoch, when missing), marked as used. Every
    /// `SWEEP_EVERY` calls, logs that are empty and idle are dropped first.
    fn log(&mut self, channel: &Arc<str>) -> &mut Log {
        self.history_ops += 1;
        if self.history_ops % SWEEP_EVERY == 0 {
            self.sweep_logs();
        }
        let epoch = &self.shared.epoch;
        let log = self.logs.entry(channel.clone()).or_insert_with(|| Log {
            top: 0,
            entries: VecDeque::new(),
            epoch: format!("{epoch}{:06x}", rand::random::<u32>() & 0xFF_FFFF).into(),
            used: Instant::now(),
        });
        log.used = Instant::now();
        log
    }

    /// Trims every log by age and drops those left empty and unused for `IDLE`.
    fn sweep_logs(&mut self) {
        let config = &self.shared.config;
        let now = Instant::now();
        self.logs.retain(|channel, log| {
            let ns = config.namespace(channel);
            log.trim(ns.history_size, ns.history_ttl, now);
            !log.dead(now, IDLE)
        });
    }

    pub(super) fn keeps_history(&self, channel: &str) -> bool {
        self.shared.config.namespace(channel).history_size > 0
    }

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
        channel: &str,
        data: &str,
        from: Option<&str>,
        ack: Option<AckTo>,
        stamp: Option<Instant>,
    ) {
        let ns = self.shared.config.namespace(channel);
        let (size, ttl) = (ns.history_size, ns.history_ttl);
        let now = Instant::now();
        let name: Arc<str> = match self.logs.get_key_value(channel) {
            Some((k, _)) => k.clone(),
            None => channel.into(),
        };
        let log = self.log(&name);
        log.top += 1;
        let offset = log.top;
        let frame = protocol::message_at(channel, data, from, offset);
        log.entries.push_back(Stored {
            offset,
            ts: crate::auth::unix_ms(),
            at: now,
            from: from.map(Into::into),
            data: data.into(),
            frame: frame.clone(),
        });
        log.trim(size, ttl, now);
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
        let to = ConnRef {
            shard: self.index,
            key,
            conn: conn.id,
            id,
        };
        let here = Some(self.index);
        if let Some(msg) = route::ask_recovery(&self.shared, here, channel.clone(), since, to) {
            self.handle(msg);
        }
    }

    /// The owner: where the channel stands, and what was missed since `since`.
    pub fn recover(&mut self, channel: &Arc<str>, since: Option<Since>, to: ConnRef) {
        let ns = self.shared.config.namespace(channel);
        let (size, ttl) = (ns.history_size, ns.history_ttl);
        let log = self.log(channel);
        log.trim(size, ttl, Instant::now());
        let top = log.top;
        let epoch = log.epoch.clone();
        let (recovered, frames) = match since {
            None => (None, Vec::new()),
            Some(s) => {
                let first = log.entries.front().map_or(top + 1, |e| e.offset);
                let same_epoch = s.epoch() == Some(&*epoch);
                // Everything after `s` must still be kept: offsets s+1 ..= top.
                if same_epoch && s.offset() <= top && s.offset() + 1 >= first {
                    let frames = log
                        .entries
                        .iter()
                        .filter(|e| e.offset > s.offset())
                        .map(|e| e.frame.clone())
                        .collect();
                    (Some(true), frames)
                } else {
                    (Some(false), Vec::new())
                }
            }
        };
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

    /// The subscriber's shard: `subscribed`, what was missed, then live publications.
    pub fn recovered(
        &mut self,
        to: ConnRef,
        channel: &Arc<str>,
        epoch: &str,
        top: u64,
        recovered: Option<bool>,
        frames: Vec<Bytes>,
    ) {
        let Some(conn) = self.conns.get_mut(to.key).filter(|c| c.id == to.conn) else {
            return;
        };
        let Some(state) = conn.catching_up.iter_mut().find(|(c, _)| c == channel) else {
            return; // unsubscribed meanwhile
        };
        state.1 = Catchup::After(top);
        self.send(
            to.key,
            protocol::subscribed(to.id, channel, top, epoch, recovered),
        );
        for f in frames {
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
        let ns = self.shared.config.namespace(channel);
        let (size, ttl) = (ns.history_size, ns.history_ttl);
        let log = self.log(channel);
        log.trim(size, ttl, Instant::now());
        let after = since.unwrap_or(0);
        let publications = protocol::publications_json(
            log.entries
                .iter()
                .filter(|e| e.offset > after)
                .take(limit)
                .map(|e| Publication {
                    offset: e.offset,
                    from: e.from.as_deref(),
                    ts: e.ts,
                    data: &e.data,
                }),
        );
        let epoch = log.epoch.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn log(offsets: &[u64], at: Instant) -> Log {
        Log {
            top: offsets.last().copied().unwrap_or(0),
            entries: offsets
                .iter()
                .map(|&offset| Stored {
                    offset,
                    ts: 0,
                    at,
                    from: None,
                    data: "1".into(),
                    frame: Bytes::new(),
                })
                .collect(),
            epoch: "e".into(),
            used: at,
        }
    }

    #[test]
    fn trimmed_by_size_then_age() {
        let start = Instant::now();
        let mut l = log(&[1, 2, 3, 4, 5], start);
        l.trim(3, None, start);
        let kept: Vec<u64> = l.entries.iter().map(|e| e.offset).collect();
        assert_eq!(kept, vec![3, 4, 5]);
        l.trim(
            3,
            Some(Duration::from_secs(1)),
            start + Duration::from_secs(2),
        );
        assert!(l.entries.is_empty());
        assert_eq!(l.top, 5, "the offset sequence goes on");
    }

    #[test]
    fn only_empty_idle_logs_are_dead() {
        let start = Instant::now();
        let idle = Duration::from_secs(10);
        let later = start + Duration::from_secs(11);
        assert!(
            !log(&[1], start).dead(later, idle),
            "kept publications stay"
        );
        assert!(
            !log(&[], start).dead(start + Duration::from_secs(5), idle),
            "recently used"
        );
        assert!(log(&[], start).dead(later, idle));
    }
}
