//! Channel -> this shard's subscribed connections (slab keys). The first subscriber of a
//! channel and the last one leaving are reported, so that `Core` can set and clear the
//! shard's bit in the interest map.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexSet;

#[derive(Default)]
pub struct Subscriptions {
    channels: HashMap<Arc<str>, IndexSet<usize>>,
}

/// What `add` did.
pub struct Added {
    /// The channel's name, shared by every subscriber's list on this shard.
    pub name: Arc<str>,
    /// The channel's first subscriber on this shard.
    pub first: bool,
}

impl Subscriptions {
    /// Adds `key` to the channel's subscribers.
    pub fn add(&mut self, channel: &str, key: usize) -> Added {
        let (name, first) = match self.channels.get_key_value(channel) {
            Some((name, _)) => (name.clone(), false),
            None => (Arc::from(channel), true),
        };
        self.channels.entry(name.clone()).or_default().insert(key);
        Added { name, first }
    }

    /// Removes `key` from the channel's subscribers; true when it was the last.
    pub fn remove(&mut self, channel: &str, key: usize) -> bool {
        let Some(keys) = self.channels.get_mut(channel) else {
            return false;
        };
        keys.swap_remove(&key);
        if !keys.is_empty() {
            return false;
        }
        self.channels.remove(channel);
        true
    }

    /// The channels with subscribers on this shard.
    pub fn channels(&self) -> impl Iterator<Item = &Arc<str>> {
        self.channels.keys()
    }

    /// The channel's subscribers on this shard.
    pub fn of(&self, channel: &str) -> Option<&IndexSet<usize>> {
        self.channels.get(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_subscribers_are_reported() {
        let mut s = Subscriptions::default();
        let a = s.add("t:1", 1);
        assert!(a.first);
        let b = s.add("t:1", 2);
        assert!(!b.first);
        assert!(Arc::ptr_eq(&a.name, &b.name), "one name per channel");
        assert_eq!(s.of("t:1").unwrap().len(), 2);
        assert!(!s.remove("t:1", 1));
        assert!(s.remove("t:1", 2), "the last one");
        assert!(s.of("t:1").is_none());
        assert!(!s.remove("t:1", 2), "nothing left to remove");
    }

    #[test]
    fn adding_twice_keeps_one_entry() {
        let mut s = Subscriptions::default();
        s.add("t:1", 7);
        s.add("t:1", 7);
        assert_eq!(s.of("t:1").unwrap().len(), 1);
        assert!(s.remove("t:1", 7));
    }
}
