//! Subscriptions and fan-out on a shard. A publication arrives as finished frame bytes and
//! is queued, as the same `Bytes`, to every local subscriber; other shards get it through
//! their inboxes only when the interest map says they have subscribers.

use bytes::Bytes;

use super::conn::Queued;
use super::conn::Stage;
use super::core::{queue, Core};
use crate::route;

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
        self.conns[key].subs.push(added.name);
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
        if self.subscriptions.remove(channel, key) {
            self.shared.remove_interest(channel, self.index);
        }
    }

    /// Queues a publication's frame to this shard's subscribers of `channel`.
    /// On channels with history, `offset` keeps a catching-up subscriber from seeing a
    /// publication twice or before what it missed.
    pub fn deliver(&mut self, channel: &str, frame: &Bytes, offset: Option<u64>) {
        let limit = self.shared.config.send_queue_bytes;
        let Some(subscribers) = self.subscriptions.of(channel) else {
            return;
        };
        let mut slow = Vec::new();
        crate::metrics::local(|m| crate::metrics::bump(&m.deliveries, subscribers.len() as u64));
        for &key in subscribers {
            let conn = &mut self.conns[key];
            if conn.stage() != Stage::Open {
                continue;
            }
            if !conn.catching_up.is_empty() && !super::history::passes(conn, channel, offset) {
                continue;
            }
            if queue(conn, &mut self.dirty, key, frame.clone(), limit) == Queued::Overflow {
                slow.push(key);
            }
        }
        for key in slow {
            self.slow_consumer(key);
        }
    }

    /// Queues a direct message's frame to every local connection of `user`.
    pub fn deliver_to_user(&mut self, user: &str, frame: &Bytes) {
        let keys = self.users.conns(user).to_vec();
        crate::metrics::local(|m| crate::metrics::bump(&m.deliveries, keys.len() as u64));
        for key in keys {
            self.send(key, frame.clone());
        }
    }

    /// A publication on a channel without history: to every shard with subscribers (this
    /// one included) and to the other instances. The frame is made only when someone may
    /// receive it.
    pub(super) fn publish(&mut self, channel: &str, frame: impl FnOnce() -> Bytes) {
        if let Some(frame) = route::publish(&self.shared, Some(self.index), channel, frame) {
            self.deliver(channel, &frame, None);
        }
    }

    /// Sends a direct message to the shard of `user` (delivered here when it is this one).
    pub(super) fn send_to_user(&mut self, user: &str, frame: Bytes) {
        if let Some(msg) = route::send(&self.shared, Some(self.index), user, frame) {
            self.handle(msg);
        }
    }
}
