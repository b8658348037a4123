//! Presence on a shard, what it means for connections: `join` on a user's first
//! subscribed connection, `leave` after the last one goes (unsubscribe, close, timeout,
//! drain, kick — all end in `presence_remove`), each exactly once, decided by the user's
//! shard alone (the bookkeeping is `state::Presence`).
//!
//! A `presence` request is answered by scatter/gather: the asking shard sends a query to
//! every other shard through the inboxes, each answers with its part, and the reply goes out
//! when all parts are in — or with a `timeout` error after `PRESENCE_TIMEOUT`.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::core::Core;
use super::state::{Pending, TimerKind};
use crate::protocol::{self, ErrorCode, PresenceUser, Status};
use crate::route::inbox::{PartTo, ShardMsg};
use crate::route::webhook_queue;

/// How long a presence query waits for the other shards.
pub const PRESENCE_TIMEOUT: Duration = Duration::from_secs(2);

impl Core {
    fn tracks_presence(&self, channel: &str) -> bool {
        let ns = self.shared.config.namespace(channel);
        ns.presence || ns.join_leave
    }

    /// A connection subscribed to `channel`: count it, announce the user's first.
    pub(super) fn presence_add(&mut self, key: usize, channel: &Arc<str>) {
        self.presence_add_with(key, channel, None);
    }

    /// `presence_add`, with the user's `info` on this channel instead of the token's.
    pub(super) fn presence_add_with(&mut self, key: usize, channel: &Arc<str>, info: Option<&str>) {
        if !self.tracks_presence(channel) {
            return;
        }
        let Some(session) = self.conns[key].phase.open() else {
            return;
        };
        let (user, identity) = (session.user.clone(), session.identity.clone());
        let status = self.users.status(&user);
        let info = info.unwrap_or(identity.info());
        let joined = self.presence.add(channel, &user, info, status);
        if let (Some(info), true) = (joined, self.shared.config.namespace(channel).join_leave) {
            if !self.relay_transition(channel, &user, &info, true) {
                webhook_queue::presence(&self.shared, true, channel, &user, &info);
                self.publish(channel, || {
                    protocol::join_leave("join", channel, &user, &info)
                });
            }
        }
    }

    /// A connection of `user` left `channel`: announce the user's last.
    pub(super) fn presence_remove(&mut self, channel: &str, user: &Rc<str>) {
        let Some(info) = self.presence.remove(channel, user) else {
            return;
        };
        if self.shared.config.namespace(channel).join_leave
            && !self.relay_transition(channel, user, &info, false)
        {
            webhook_queue::presence(&self.shared, false, channel, user, &info);
            self.publish(channel, || {
                protocol::join_leave("leave", channel, user, &info)
            });
        }
    }

    /// This shard's part of a channel's presence.
    pub fn presence_local(&self, channel: &str) -> Vec<PresenceUser> {
        self.presence.local(channel)
    }

    /// A client's `presence` request: answer at once with one shard, else scatter.
    pub(super) fn presence_request(&mut self, key: usize, id: Option<u64>, channel: &str) {
        if !self.tracks_presence(channel) {
            self.send(
                key,
                protocol::error(
                    id,
                    ErrorCode::BadRequest,
                    "presence is not enabled on this channel",
                ),
            );
            return;
        }
        let users = self.presence_local(channel);
        let others = self.shared.shards() - 1;
        let query = self.presence.next_query();
        // Other instances (through the relay) answer as one more part.
        let remote = self.presence_remote(channel, query) as usize;
        if others + remote == 0 {
            self.send(key, protocol::presence(id, channel, &users));
            return;
        }
        let channel: Arc<str> = channel.into();
        for shard in (0..self.shared.shards()).filter(|&s| s != self.index) {
            self.shared.send(
                shard,
                ShardMsg::PresenceQuery {
                    channel: channel.clone(),
                    to: PartTo::Shard {
                        shard: self.index,
                        query,
                    },
                },
            );
        }
        let conn = self.conns[key].id;
        self.presence.wait(
            query,
            Pending {
                key,
                conn,
                id,
                channel,
                users,
                waiting: others + remote,
            },
        );
        self.schedule(key, PRESENCE_TIMEOUT, TimerKind::Gather(query));
    }

    /// Another shard (or the control plane) asks for this shard's part.
    pub fn presence_query(&mut self, channel: &str, to: PartTo) {
        let users = self.presence_local(channel);
        match to {
            PartTo::Shard { shard, query } => self
                .shared
                .send(shard, ShardMsg::PresencePart { query, users }),
            PartTo::Control(reply) => {
                let _ = reply.send(users);
            }
        }
    }

    /// A part arrived; the reply goes out with the last one.
    pub fn presence_part(&mut self, query: u64, users: Vec<PresenceUser>) {
        let Some(p) = self.presence.part(query, users) else {
            return;
        };
        if self.conns.get(p.key).is_some_and(|c| c.id == p.conn) {
            let users = crate::protocol::merge_presence(p.users);
            self.send(p.key, protocol::presence(p.id, &p.channel, &users));
        }
    }

    /// The query's timer fired: whatever has not been answered gets a `timeout` error.
    pub(super) fn presence_timeout(&mut self, query: u64) {
        let Some(p) = self.presence.expire(query) else {
            return;
        };
        if self.conns.get(p.key).is_some_and(|c| c.id == p.conn) {
            self.send(
                p.key,
                protocol::error(p.id, ErrorCode::Timeout, "not every shard answered in time"),
            );
        }
    }

    /// `status`: the user's status, announced on every channel where the user is present.
    pub(super) fn set_status(&mut self, user: &Rc<str>, status: Status) {
        if !self.users.set_status(user, status) {
            return;
        }
        let mut channels: Vec<Arc<str>> = Vec::new();
        for &k in self.users.conns(user) {
            for ch in &self.conns[k].subs {
                if !channels.contains(ch) {
                    channels.push(ch.clone());
                }
            }
        }
        for ch in channels {
            if !self.presence.set_status(&ch, user, status) {
                continue;
            }
            self.publish(&ch, || protocol::status(&ch, user, status));
        }
    }
}
