//! Gaps on channels with history: every live publication passes the channel's stream
//! (`state::Streams`) before it is fanned out. A jump in offsets, a relay that comes back,
//! or an epoch that changed makes the shard ask the sequencer for what it missed and hand
//! that out before anything newer; when it cannot be had, the channel's subscribers here
//! get an unsolicited `unsubscribed` with reason `recovery_failed` (docs/protocol.md §10),
//! and resubscribe with `since`.

use std::sync::Arc;

use bytes::Bytes;

use super::conn::Catchup;
use super::core::Core;
use super::state::{Admit, Answer, Ask, Joined, Resolved, Timer, TimerKind};

/// How soon a stream whose ask went unanswered (the sequencer away) asks again.
const STREAM_RETRY: std::time::Duration = std::time::Duration::from_millis(500);
use crate::protocol::{self, Since};
use crate::route;
use crate::route::inbox::RecoverTo;

impl Core {
    /// A live publication on a channel with history: fanned out when it is the next one,
    /// held behind a gap (which is asked for), or dropped as already handed out.
    pub(super) fn deliver_in_order(&mut self, channel: &str, frame: &Bytes, offset: u64) {
        match self.streams.admit(channel, offset, frame) {
            Admit::Deliver => self.fan_out(channel, frame, Some(offset)),
            Admit::Duplicate => {}
            Admit::Behind { ask } => {
                tracing::debug!(
                    channel,
                    last = ask.after,
                    offset,
                    "history: offset behind the stream"
                );
                self.ask_gap(channel, ask);
            }
            Admit::Held { ask } => {
                if let Some(ask) = ask {
                    tracing::debug!(channel, after = ask.after, offset, "history: gap");
                    self.ask_gap(channel, ask);
                }
            }
            Admit::Lost => self.tell_lost(channel),
        }
    }

    /// The relay is subscribed to Redis again: what was published while it was away may
    /// not have been heard. Known streams ask what follows their last offset; channels
    /// whose subscribers joined while Redis was away learn where they stand.
    pub fn resumed(&mut self) {
        for (channel, ask) in self.streams.resume() {
            self.ask_gap(&channel, ask);
        }
        let config = &self.shared.config;
        let unknown: Vec<Arc<str>> = self
            .subscriptions
            .channels()
            .filter(|c| config.keeps_history(c) && !self.streams.knows(c))
            .cloned()
            .collect();
        for channel in unknown {
            self.ask(channel, None);
        }
    }

    fn ask_gap(&mut self, channel: &str, ask: Ask) {
        let since = Since::At {
            offset: ask.after,
            epoch: Some(ask.epoch.to_string()),
        };
        self.ask(channel.into(), Some(since));
    }

    fn ask(&mut self, channel: Arc<str>, since: Option<Since>) {
        let to = RecoverTo::Shard(self.index);
        if let Some(msg) = route::ask_recovery(&self.shared, Some(self.index), channel, since, to) {
            self.handle(msg);
        }
    }

    /// The sequencer's answer to this shard's ask for `channel`.
    pub(super) fn caught_up(
        &mut self,
        channel: &Arc<str>,
        epoch: &Arc<str>,
        top: u64,
        recovered: Option<bool>,
        frames: Vec<(u64, Bytes)>,
    ) {
        let answer = match recovered {
            _ if epoch.is_empty() => Answer::Unavailable,
            // Where a channel stands that had no known position.
            None => return self.joined(channel, epoch, top),
            Some(true) => Answer::Kept { frames, top },
            Some(false) => Answer::Lost,
        };
        let unavailable = matches!(answer, Answer::Unavailable);
        match self.streams.answer(channel, answer) {
            // Nothing else may come to make it ask again (no publication, the relay up all
            // along): a timer does.
            Resolved::Wait if unavailable => self.schedule_stream_retry(),
            Resolved::Deliver { frames, ask } => {
                if !frames.is_empty() {
                    crate::metrics::local(|m| crate::metrics::bump(&m.gaps_recovered, 1));
                    tracing::info!(
                        channel = &**channel,
                        from = frames[0].0,
                        to = frames[frames.len() - 1].0,
                        "history: gap filled"
                    );
                }
                for (offset, frame) in frames {
                    self.fan_out(channel, &frame, Some(offset));
                }
                if let Some(ask) = ask {
                    self.ask_gap(channel, ask);
                }
            }
            Resolved::Wait => {}
            Resolved::Lost => self.tell_lost(channel),
        }
    }

    fn schedule_stream_retry(&mut self) {
        if !std::mem::replace(&mut self.stream_retry_due, true) {
            let at = std::time::Instant::now() + STREAM_RETRY;
            let t = Timer {
                key: 0,
                conn: 0,
                kind: TimerKind::StreamsRetry,
            };
            self.timers.schedule(at, t);
        }
    }

    /// The retry timer: the stalled streams ask again.
    pub(super) fn retry_stalled(&mut self) {
        self.stream_retry_due = false;
        for (channel, ask) in self.streams.retry() {
            self.ask_gap(&channel, ask);
        }
    }

    /// A position learnt for `channel` (a subscriber's answer, or a shard's ask without
    /// `since`). A new epoch under live subscribers means their offsets no longer hold.
    pub(super) fn joined(&mut self, channel: &Arc<str>, epoch: &Arc<str>, top: u64) {
        if self.streams.joined(channel, epoch, top) == Joined::EpochChanged {
            self.tell_lost(channel);
        }
    }

    /// Ends the subscriptions of `channel` here that missed publications for good (those
    /// still waiting for their own recovery answer are not affected: it will be current).
    fn tell_lost(&mut self, channel: &str) {
        crate::metrics::local(|m| crate::metrics::bump(&m.gaps_lost, 1));
        let Some(keys) = self.subscriptions.of(channel) else {
            return;
        };
        let lost: Vec<usize> = keys
            .iter()
            .copied()
            .filter(|&key| {
                let conn = &self.conns[key];
                !conn
                    .catching_up
                    .iter()
                    .any(|(c, state)| &**c == channel && *state == Catchup::Pending)
            })
            .collect();
        tracing::warn!(
            channel,
            subscribers = lost.len(),
            "history: missed publications cannot be recovered; subscribers unsubscribed"
        );
        let frame = protocol::unsubscribed_lost(channel);
        for key in lost {
            self.send(key, frame.clone());
            self.unsubscribe(key, channel);
        }
    }
}
