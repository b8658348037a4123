//! Where each channel with history stands on this shard: the epoch and the last offset its
//! live subscribers were given. Publications must arrive here one offset after another; a
//! jump means some were lost on the way (with Redis: published while this instance's
//! subscription was not in place, as around a Redis restart). Then the stream holds what
//! arrives, asks the sequencer for what was missed, and hands out the missing publications
//! before the held ones, each once and in order. When the sequencer no longer has them, or
//! its epoch changed, the subscribers are told (docs/protocol.md §10, "Gaps").
//!
//! A stream is known from its first subscriber's recovery answer until its last local
//! subscriber leaves; before that it passes everything (each joining connection filters
//! its own catching up, see `shard::history`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

/// Most publications held while a gap is recovered; past it the gap counts as lost.
pub const HELD_MAX: usize = 16_384;

#[derive(Default)]
pub struct Streams {
    streams: HashMap<Arc<str>, Stream>,
}

struct Stream {
    epoch: Arc<str>,
    /// The last offset handed to the live subscribers.
    last: u64,
    phase: Phase,
    /// Publications that arrived past a gap, in arrival order.
    held: Vec<(u64, Bytes)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Live,
    /// Asked the sequencer for what follows `last`; waiting for the answer.
    Asking,
    /// The last ask could not be answered (the sequencer was away): ask again at the next
    /// publication or when the relay is back.
    Stalled,
}

/// What to do with a live publication.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// The next one (or the stream is not known yet): deliver it.
    Deliver,
    /// Already handed out (it was recovered before it arrived live).
    Duplicate,
    /// Below the stream's last offset on a live stream: dropped, and the sequencer asked
    /// whether its epoch is still the stream's.
    Behind { ask: Ask },
    /// Held behind a gap; `ask` is set when the sequencer must be asked for what follows it.
    Held { ask: Option<Ask> },
    /// Too much held behind a gap that does not close: the subscribers must be told.
    Lost,
}

/// A request for what follows `after` in `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub after: u64,
    pub epoch: Arc<str>,
}

/// What a subscriber's recovery answer means for the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    /// The stream is known from now on (or was, in the same epoch), or nothing was learnt.
    Same,
    /// The sequencer's epoch is not the one the live subscribers are in: they must be told.
    EpochChanged,
}

/// The sequencer's answer to an `Ask`.
pub enum Answer {
    /// Nothing could be asked (the sequencer is away): try again later.
    Unavailable,
    /// What followed `after`, all of it still kept in the same epoch, up to the channel's
    /// `top` when the sequencer answered.
    Kept { frames: Vec<(u64, Bytes)>, top: u64 },
    /// Not all kept any more, or the epoch changed.
    Lost,
}

/// What to hand out after an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// These publications, in order; the stream is live again (or asks again: `ask`).
    Deliver {
        frames: Vec<(u64, Bytes)>,
        ask: Option<Ask>,
    },
    /// Still waiting (nothing known, or the answer came for a stream no longer asking).
    Wait,
    /// The gap cannot be closed: tell the subscribers (the stream is forgotten).
    Lost,
}

impl Streams {
    /// A live publication at `offset` on `channel`.
    pub fn admit(&mut self, channel: &str, offset: u64, frame: &Bytes) -> Admit {
        let Some(s) = self.streams.get_mut(channel) else {
            return Admit::Deliver;
        };
        if offset <= s.last {
            // Offsets do not repeat on their own: after a gap is closed, everything below
            // the answer has arrived. An old offset on a live stream means the sequencer
            // started again (a new epoch), or a duplicate: asking tells which.
            if s.phase == Phase::Live {
                return Admit::Behind { ask: s.ask() };
            }
            return Admit::Duplicate;
        }
        if s.phase == Phase::Live && offset == s.last + 1 {
            s.last = offset;
            return Admit::Deliver;
        }
        if s.held.len() >= HELD_MAX {
            self.streams.remove(channel);
            return Admit::Lost;
        }
        s.held.push((offset, frame.clone()));
        let ask = (s.phase != Phase::Asking).then(|| s.ask());
        Admit::Held { ask }
    }

    /// A subscriber's recovery answer: the channel stood at `top` in `epoch` (empty when
    /// the sequencer was away: nothing learnt).
    pub fn joined(&mut self, channel: &Arc<str>, epoch: &Arc<str>, top: u64) -> Joined {
        if epoch.is_empty() {
            return Joined::Same;
        }
        match self.streams.get_mut(channel) {
            None => {
                self.streams.insert(channel.clone(), Stream::at(epoch, top));
                Joined::Same
            }
            Some(s) if s.epoch == *epoch => Joined::Same,
            Some(s) => {
                *s = Stream::at(epoch, top);
                Joined::EpochChanged
            }
        }
    }

    /// The sequencer may have published what this shard did not hear (the relay was
    /// away): every known stream asks what follows its last offset.
    pub fn resume(&mut self) -> Vec<(Arc<str>, Ask)> {
        let mut asks = Vec::new();
        for (channel, s) in &mut self.streams {
            if s.phase != Phase::Asking {
                asks.push((channel.clone(), s.ask()));
            }
        }
        asks
    }

    /// The sequencer's answer to this stream's ask.
    pub fn answer(&mut self, channel: &str, answer: Answer) -> Resolved {
        let Some(s) = self.streams.get_mut(channel) else {
            return Resolved::Wait;
        };
        if s.phase != Phase::Asking {
            return Resolved::Wait;
        }
        let recovered = match answer {
            Answer::Unavailable => {
                s.phase = Phase::Stalled;
                return Resolved::Wait;
            }
            Answer::Lost => {
                self.streams.remove(channel);
                return Resolved::Lost;
            }
            Answer::Kept { frames, top } => (frames, top),
        };
        let (recovered, top) = recovered;
        let mut frames = Vec::with_capacity(recovered.len() + s.held.len());
        for (offset, frame) in recovered.into_iter().chain(std::mem::take(&mut s.held)) {
            if offset > top {
                // Everything that arrived before the answer was sequenced before it: an
                // offset past the sequencer's top was not made by it (garbage on the
                // channel's topic). Dropped, or it would be asked about for ever.
                continue;
            }
            if offset == s.last + 1 {
                s.last = offset;
                frames.push((offset, frame));
            } else if offset > s.last {
                // Still a hole before it: held again, asked again.
                s.held.push((offset, frame));
            }
        }
        s.phase = Phase::Live;
        let ask = (!s.held.is_empty()).then(|| s.ask());
        Resolved::Deliver { frames, ask }
    }

    /// Every stream whose last ask went unanswered asks again.
    pub fn retry(&mut self) -> Vec<(Arc<str>, Ask)> {
        let mut asks = Vec::new();
        for (channel, s) in &mut self.streams {
            if s.phase == Phase::Stalled {
                asks.push((channel.clone(), s.ask()));
            }
        }
        asks
    }

    /// Is the channel's position known here?
    pub fn knows(&self, channel: &str) -> bool {
        self.streams.contains_key(channel)
    }

    /// The channel's last local subscriber left.
    pub fn remove(&mut self, channel: &str) {
        self.streams.remove(channel);
    }
}

impl Stream {
    fn at(epoch: &Arc<str>, top: u64) -> Stream {
        Stream {
            epoch: epoch.clone(),
            last: top,
            phase: Phase::Live,
            held: Vec::new(),
        }
    }

    /// Asks for what follows `last` (and waits for the answer).
    fn ask(&mut self) -> Ask {
        self.phase = Phase::Asking;
        Ask {
            after: self.last,
            epoch: self.epoch.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(offset: u64) -> Bytes {
        Bytes::from(offset.to_string())
    }

    fn known(top: u64) -> Streams {
        let mut s = Streams::default();
        assert_eq!(s.joined(&"h:1".into(), &"e1".into(), top), Joined::Same);
        s
    }

    #[test]
    fn unknown_streams_pass_everything() {
        let mut s = Streams::default();
        assert_eq!(s.admit("h:1", 7, &f(7)), Admit::Deliver);
        assert_eq!(s.admit("h:1", 3, &f(3)), Admit::Deliver);
    }

    #[test]
    fn the_next_offset_is_delivered_and_an_old_one_makes_it_ask() {
        let mut s = known(5);
        assert_eq!(s.admit("h:1", 6, &f(6)), Admit::Deliver);
        let ask = Ask {
            after: 6,
            epoch: "e1".into(),
        };
        assert_eq!(s.admit("h:1", 6, &f(6)), Admit::Behind { ask });
        assert_eq!(s.admit("h:1", 2, &f(2)), Admit::Duplicate, "asked already");
        // Same epoch, nothing new: a duplicate after all.
        let done = s.answer(
            "h:1",
            Answer::Kept {
                frames: Vec::new(),
                top: 5,
            },
        );
        assert!(matches!(done, Resolved::Deliver { ask: None, .. }));
        assert_eq!(s.admit("h:1", 7, &f(7)), Admit::Deliver);
    }

    #[test]
    fn a_gap_is_asked_once_and_filled_before_the_held() {
        let mut s = known(5);
        let ask = Ask {
            after: 5,
            epoch: "e1".into(),
        };
        assert_eq!(s.admit("h:1", 8, &f(8)), Admit::Held { ask: Some(ask) });
        assert_eq!(s.admit("h:1", 9, &f(9)), Admit::Held { ask: None });
        // The answer holds 6..=9 (8 and 9 arrived live meanwhile).
        let kept = (6..=9).map(|o| (o, f(o))).collect();
        let done = s.answer(
            "h:1",
            Answer::Kept {
                frames: kept,
                top: 9,
            },
        );
        let expect: Vec<_> = (6..=9).map(|o| (o, f(o))).collect();
        assert_eq!(
            done,
            Resolved::Deliver {
                frames: expect,
                ask: None
            }
        );
        assert_eq!(s.admit("h:1", 10, &f(10)), Admit::Deliver);
    }

    #[test]
    fn a_lost_gap_forgets_the_stream() {
        let mut s = known(5);
        assert!(matches!(s.admit("h:1", 8, &f(8)), Admit::Held { .. }));
        assert_eq!(s.answer("h:1", Answer::Lost), Resolved::Lost);
        assert_eq!(s.admit("h:1", 9, &f(9)), Admit::Deliver, "forgotten");
    }

    #[test]
    fn an_unavailable_sequencer_is_asked_again_at_the_next_publication() {
        let mut s = known(5);
        assert!(matches!(
            s.admit("h:1", 8, &f(8)),
            Admit::Held { ask: Some(_) }
        ));
        assert_eq!(s.answer("h:1", Answer::Unavailable), Resolved::Wait);
        assert!(matches!(
            s.admit("h:1", 9, &f(9)),
            Admit::Held { ask: Some(_) }
        ));
    }

    #[test]
    fn an_offset_past_the_sequencers_top_is_dropped_not_asked_about_for_ever() {
        let mut s = known(5);
        assert!(matches!(
            s.admit("h:1", 1 << 40, &f(0)),
            Admit::Held { ask: Some(_) }
        ));
        let kept = Answer::Kept {
            frames: Vec::new(),
            top: 5,
        };
        let done = s.answer("h:1", kept);
        let expect = Resolved::Deliver {
            frames: Vec::new(),
            ask: None,
        };
        assert_eq!(done, expect);
        assert_eq!(s.admit("h:1", 6, &f(6)), Admit::Deliver);
    }

    #[test]
    fn retry_asks_only_the_stalled() {
        let mut s = known(5);
        s.joined(&"h:2".into(), &"e1".into(), 0);
        assert!(matches!(
            s.admit("h:2", 3, &f(3)),
            Admit::Held { ask: Some(_) }
        ));
        assert_eq!(s.answer("h:2", Answer::Unavailable), Resolved::Wait);
        let asks = s.retry();
        assert_eq!(asks.len(), 1);
        assert_eq!((&*asks[0].0, asks[0].1.after), ("h:2", 0));
        assert!(s.retry().is_empty(), "asking now");
    }

    #[test]
    fn resume_asks_every_stream_not_already_asking() {
        let mut s = known(5);
        s.joined(&"h:2".into(), &"e1".into(), 0);
        assert!(matches!(
            s.admit("h:2", 3, &f(3)),
            Admit::Held { ask: Some(_) }
        ));
        let asks = s.resume();
        assert_eq!(asks.len(), 1);
        assert_eq!(&*asks[0].0, "h:1");
        // Nothing was missed: the stream is live again with nothing to hand out.
        let done = s.answer(
            "h:1",
            Answer::Kept {
                frames: Vec::new(),
                top: 6,
            },
        );
        assert_eq!(
            done,
            Resolved::Deliver {
                frames: Vec::new(),
                ask: None
            }
        );
        assert_eq!(s.admit("h:1", 6, &f(6)), Admit::Deliver);
    }

    #[test]
    fn a_new_epoch_at_a_join_is_reported_and_adopted() {
        let mut s = known(5);
        assert_eq!(s.joined(&"h:1".into(), &"e1".into(), 9), Joined::Same);
        assert_eq!(
            s.joined(&"h:1".into(), &"e2".into(), 1),
            Joined::EpochChanged
        );
        assert_eq!(s.admit("h:1", 2, &f(2)), Admit::Deliver);
    }

    #[test]
    fn a_stream_known_while_the_sequencer_was_away_learns_its_place() {
        let mut s = Streams::default();
        // Subscribed during the outage: no epoch, nothing known.
        assert_eq!(s.joined(&"h:1".into(), &"".into(), 0), Joined::Same);
        assert_eq!(s.admit("h:1", 40, &f(40)), Admit::Deliver, "still unknown");
        assert_eq!(s.joined(&"h:1".into(), &"e1".into(), 41), Joined::Same);
        assert_eq!(s.admit("h:1", 42, &f(42)), Admit::Deliver);
    }

    #[test]
    fn too_much_held_is_lost() {
        let mut s = known(0);
        for o in 2..(2 + HELD_MAX as u64) {
            assert!(matches!(s.admit("h:1", o, &f(o)), Admit::Held { .. }));
        }
        assert_eq!(s.admit("h:1", 1 << 40, &f(0)), Admit::Lost);
    }
}
