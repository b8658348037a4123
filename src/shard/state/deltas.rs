//! The channels some of this shard's subscribers take as Fossil deltas (docs/protocol.md,
//! "Deltas"): who they are, whether each is in step (received the channel's previous
//! publication here, so that a delta against it makes sense to them), and that previous
//! publication's `data`.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

#[derive(Default)]
pub struct Deltas {
    channels: HashMap<Arc<str>, Channel>,
}

#[derive(Default)]
struct Channel {
    /// Subscribers taking deltas, and whether each is in step.
    subscribers: HashMap<usize, bool>,
    /// The `data` of the channel's last publication fanned out here.
    previous: Option<Bytes>,
}

/// How a publication goes to one subscriber of a channel with delta subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The frame as published: the subscriber did not ask for deltas.
    Plain,
    /// The whole `data`, as a string: the subscriber is not in step.
    Full,
    /// A delta against the previous publication.
    Delta,
}

impl Deltas {
    /// `key` takes `channel` as deltas from now on; its next publication is full.
    pub fn join(&mut self, channel: &Arc<str>, key: usize) {
        let ch = self.channels.entry(channel.clone()).or_default();
        ch.subscribers.insert(key, false);
    }

    /// `key` no longer takes `channel` (unsubscribed or gone).
    pub fn leave(&mut self, channel: &str, key: usize) {
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.subscribers.remove(&key);
            if ch.subscribers.is_empty() {
                self.channels.remove(channel);
            }
        }
    }

    /// Whether anyone here takes `channel` as deltas.
    pub fn any(&self, channel: &str) -> bool {
        !self.channels.is_empty() && self.channels.contains_key(channel)
    }

    /// The previous publication's `data`, when some subscriber in step could take a delta
    /// against it.
    pub fn base(&self, channel: &str) -> Option<&Bytes> {
        let ch = self.channels.get(channel)?;
        ch.subscribers.values().any(|&s| s).then_some(())?;
        ch.previous.as_ref()
    }

    /// The form of the next publication for `key` (`delta_ok`: a delta was made).
    pub fn form(&self, channel: &str, key: usize, delta_ok: bool) -> Form {
        match self
            .channels
            .get(channel)
            .and_then(|c| c.subscribers.get(&key))
        {
            None => Form::Plain,
            Some(true) if delta_ok => Form::Delta,
            Some(_) => Form::Full,
        }
    }

    /// After a publication's fan-out: `data` is the new base, and exactly the subscribers
    /// in `reached` are in step with it.
    pub fn advance(&mut self, channel: &str, data: Bytes, reached: &[usize]) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        ch.subscribers.values_mut().for_each(|s| *s = false);
        for key in reached {
            if let Some(s) = ch.subscribers.get_mut(key) {
                *s = true;
            }
        }
        ch.previous = Some(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_first_then_deltas_while_in_step() {
        let mut d = Deltas::default();
        let ch: Arc<str> = "table:1".into();
        d.join(&ch, 7);
        assert_eq!(d.form("table:1", 7, true), Form::Full);
        assert_eq!(d.form("table:1", 8, true), Form::Plain);
        assert!(d.base("table:1").is_none(), "nothing to diff against yet");
        d.advance("table:1", Bytes::from_static(b"{}"), &[7]);
        assert_eq!(d.base("table:1").unwrap(), &Bytes::from_static(b"{}"));
        assert_eq!(d.form("table:1", 7, true), Form::Delta);
        assert_eq!(d.form("table:1", 7, false), Form::Full, "no delta made");
        d.join(&ch, 7);
        assert_eq!(d.form("table:1", 7, true), Form::Full, "subscribed again");
        assert!(d.base("table:1").is_none(), "no one in step");
        d.join(&ch, 9);
        d.advance("table:1", Bytes::from_static(b"[]"), &[9]);
        assert_eq!(
            d.form("table:1", 7, true),
            Form::Full,
            "skipped: not in step"
        );
        assert_eq!(d.form("table:1", 9, true), Form::Delta);
        d.leave("table:1", 7);
        d.leave("table:1", 9);
        assert!(!d.any("table:1"));
    }
}
