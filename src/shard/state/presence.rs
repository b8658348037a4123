//! Presence on one shard: per channel, the users of this shard who are subscribed, with
//! their connection count, `info` and status; and the presence queries of this shard's
//! clients that wait for the other shards' parts. A user's first subscribed connection
//! joins, its last one leaves: each reported exactly once, so `join` / `leave` need no
//! coordination.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::protocol::{PresenceUser, Status};

#[derive(Default)]
pub struct Presence {
    channels: HashMap<Arc<str>, HashMap<Rc<str>, Entry>>,
    queries: HashMap<u64, Pending>,
    next_query: u64,
}

struct Entry {
    conns: u32,
    status: Status,
    info: Box<str>,
}

/// A client's presence query, gathering parts.
pub struct Pending {
    /// The asking connection (slab key and id) and its request id.
    pub key: usize,
    pub conn: u64,
    pub id: Option<u64>,
    pub channel: Arc<str>,
    /// The parts so far.
    pub users: Vec<PresenceUser>,
    /// Parts still to come.
    pub waiting: usize,
}

impl Presence {
    /// A connection of `user` subscribed: its `info` when this is the user's first here
    /// (a join).
    pub fn add(
        &mut self,
        channel: &Arc<str>,
        user: &Rc<str>,
        info: &str,
        status: Status,
    ) -> Option<Box<str>> {
        let entry = self
            .channels
            .entry(channel.clone())
            .or_default()
            .entry(user.clone())
            .or_insert_with(|| Entry {
                conns: 0,
                status,
                info: info.into(),
            });
        entry.conns += 1;
        (entry.conns == 1).then(|| entry.info.clone())
    }

    /// A connection of `user` left: the user's `info` when that was its last here (a leave).
    pub fn remove(&mut self, channel: &str, user: &str) -> Option<Box<str>> {
        let users = self.channels.get_mut(channel)?;
        let entry = users.get_mut(user)?;
        entry.conns -= 1;
        if entry.conns > 0 {
            return None;
        }
        let entry = users.remove(user)?;
        if users.is_empty() {
            self.channels.remove(channel);
        }
        Some(entry.info)
    }

    /// Sets the status of `user` in `channel`; true when the user is present there.
    pub fn set_status(&mut self, channel: &str, user: &str, status: Status) -> bool {
        let Some(entry) = self.channels.get_mut(channel).and_then(|u| u.get_mut(user)) else {
            return false;
        };
        entry.status = status;
        true
    }

    /// This shard's part of a channel's presence.
    pub fn local(&self, channel: &str) -> Vec<PresenceUser> {
        let Some(users) = self.channels.get(channel) else {
            return Vec::new();
        };
        users
            .iter()
            .map(|(user, e)| PresenceUser {
                user: (**user).into(),
                conns: e.conns,
                status: e.status,
                info: e.info.clone(),
            })
            .collect()
    }

    /// The id the next query will get.
    pub fn next_query(&mut self) -> u64 {
        self.next_query += 1;
        self.next_query
    }

    /// A query waits for its parts.
    pub fn wait(&mut self, query: u64, pending: Pending) {
        self.queries.insert(query, pending);
    }

    /// A part of `query` arrived: the whole query once it was the last.
    pub fn part(&mut self, query: u64, users: Vec<PresenceUser>) -> Option<Pending> {
        let p = self.queries.get_mut(&query)?;
        p.users.extend(users);
        p.waiting = p.waiting.saturating_sub(1);
        if p.waiting > 0 {
            return None;
        }
        self.queries.remove(&query)
    }

    /// The query's time is up: whatever it gathered, if it is still waiting.
    pub fn expire(&mut self, query: u64) -> Option<Pending> {
        self.queries.remove(&query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_joins_with_the_first_connection_and_leaves_with_the_last() {
        let mut p = Presence::default();
        let (ch, alice): (Arc<str>, Rc<str>) = ("c".into(), "alice".into());
        assert_eq!(
            p.add(&ch, &alice, "{\"a\":1}", Status::Online).as_deref(),
            Some("{\"a\":1}")
        );
        assert!(
            p.add(&ch, &alice, "{}", Status::Online).is_none(),
            "second connection"
        );
        assert_eq!(p.local("c")[0].conns, 2);
        assert!(p.remove("c", "alice").is_none());
        assert_eq!(p.remove("c", "alice").as_deref(), Some("{\"a\":1}"));
        assert!(p.local("c").is_empty());
        assert!(p.remove("c", "alice").is_none(), "gone already");
    }

    #[test]
    fn status_is_set_only_where_present() {
        let mut p = Presence::default();
        let (ch, alice): (Arc<str>, Rc<str>) = ("c".into(), "alice".into());
        p.add(&ch, &alice, "{}", Status::Online);
        assert!(p.set_status("c", "alice", Status::Away));
        assert_eq!(p.local("c")[0].status, Status::Away);
        assert!(!p.set_status("d", "alice", Status::Away));
    }

    #[test]
    fn a_query_completes_with_its_last_part_or_expires() {
        let mut p = Presence::default();
        let q = p.next_query();
        let pending = Pending {
            key: 1,
            conn: 9,
            id: Some(3),
            channel: "c".into(),
            users: Vec::new(),
            waiting: 2,
        };
        p.wait(q, pending);
        let bob = PresenceUser {
            user: "bob".into(),
            conns: 1,
            status: Status::Online,
            info: "{}".into(),
        };
        assert!(p.part(q, vec![bob]).is_none());
        let done = p.part(q, Vec::new()).unwrap();
        assert_eq!(done.users.len(), 1);
        assert!(p.expire(q).is_none(), "answered already");
        assert!(p.part(q, Vec::new()).is_none(), "a late part is ignored");
    }
}
