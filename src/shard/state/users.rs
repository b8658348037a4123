//! User -> this shard's connections of that user, the user's rate limit and presence
//! status. Every connection of a user lives on the user's shard, so the entry is complete
//! where it is kept. An entry exists while the user has a connection here.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::limits::{Rate, TokenBucket};
use crate::protocol::Status;

/// The window of the 4029 rule: more than `burst` refused requests within it.
pub const SUSTAINED: Duration = Duration::from_secs(10);

pub struct Users {
    map: HashMap<Rc<str>, UserState>,
    /// `messages_per_second` / `burst`, over every request of every connection of a user.
    rate: Rate,
    /// Per user and namespace with `user_publishes_per_second`: publications' buckets
    /// (kept only for users who published there; forgotten with the user).
    publishing: HashMap<Rc<str>, Vec<(Box<str>, TokenBucket)>>,
}

struct UserState {
    conns: Vec<usize>,
    bucket: TokenBucket,
    /// Requests refused since `window_start` (the 4029 rule).
    refused: u32,
    window_start: Instant,
    /// `online` or `away`, announced on the user's presence channels.
    status: Status,
}

/// Whether a request may go ahead under the user's rate limit.
#[derive(Debug, PartialEq)]
pub enum Admission {
    Allowed,
    /// Refused: a token is back after `wait`. `sustained`: the user was refused more than
    /// `burst` times within `SUSTAINED`, and the connection is to be closed with 4029.
    Limited {
        wait: Duration,
        sustained: bool,
    },
}

impl Users {
    pub fn new(rate: Rate) -> Users {
        Users {
            map: HashMap::new(),
            rate,
            publishing: HashMap::new(),
        }
    }

    /// Registers connection `key` of `user`; the user's name as shared on this shard, or
    /// None when the user already has `max` connections here.
    pub fn register(
        &mut self,
        user: &str,
        key: usize,
        max: usize,
        now: Instant,
    ) -> Option<Rc<str>> {
        if let Some((name, state)) = self.map.get_key_value(user) {
            if state.conns.len() >= max {
                return None;
            }
            let name = name.clone();
            self.map.get_mut(user)?.conns.push(key);
            return Some(name);
        }
        if max == 0 {
            return None;
        }
        let name: Rc<str> = user.into();
        let state = UserState {
            conns: vec![key],
            bucket: TokenBucket::full(self.rate, now),
            refused: 0,
            window_start: now,
            status: Status::default(),
        };
        self.map.insert(name.clone(), state);
        Some(name)
    }

    /// Forgets connection `key` of `user`, and the user after its last connection.
    pub fn unregister(&mut self, user: &str, key: usize) {
        let Some(state) = self.map.get_mut(user) else {
            return;
        };
        state.conns.retain(|&k| k != key);
        if state.conns.is_empty() {
            self.map.remove(user);
            if !self.publishing.is_empty() {
                self.publishing.remove(user);
            }
        }
    }

    /// Takes a token from `user`'s bucket for publishing in `namespace` at `rate`, or says
    /// how long until one is back.
    pub fn take_publishing(
        &mut self,
        user: &Rc<str>,
        namespace: &str,
        rate: Rate,
        now: Instant,
    ) -> Result<(), Duration> {
        let buckets = self.publishing.entry(user.clone()).or_default();
        let i = match buckets.iter().position(|(ns, _)| &**ns == namespace) {
            Some(i) => i,
            None => {
                buckets.push((namespace.into(), TokenBucket::full(rate, now)));
                buckets.len() - 1
            }
        };
        buckets[i].1.take(rate, now)
    }

    /// The slab keys of `user`'s connections on this shard.
    pub fn conns(&self, user: &str) -> &[usize] {
        self.map.get(user).map_or(&[], |s| &s.conns)
    }

    /// Takes a token from the user's bucket (the 4029 rule counts the refusals).
    pub fn admit(&mut self, user: &str, now: Instant) -> Admission {
        let rate = self.rate;
        let Some(state) = self.map.get_mut(user) else {
            return Admission::Allowed;
        };
        let Err(wait) = state.bucket.take(rate, now) else {
            return Admission::Allowed;
        };
        if now.duration_since(state.window_start) > SUSTAINED {
            state.window_start = now;
            state.refused = 0;
        }
        state.refused += 1;
        let sustained = state.refused as f64 > rate.capacity;
        Admission::Limited { wait, sustained }
    }

    pub fn status(&self, user: &str) -> Status {
        self.map.get(user).map_or(Status::Online, |s| s.status)
    }

    /// Sets the user's status; true when it changed.
    pub fn set_status(&mut self, user: &str, status: Status) -> bool {
        match self.map.get_mut(user) {
            Some(state) if state.status != status => {
                state.status = status;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_buckets_are_per_user_and_namespace_and_go_with_the_user() {
        let now = Instant::now();
        let mut u = Users::new(Rate::new(10, 10));
        let alice = u.register("alice", 1, 2, now).unwrap();
        let bob = u.register("bob", 2, 2, now).unwrap();
        let rate = Rate::new(1, 2);
        assert!(u.take_publishing(&alice, "chat", rate, now).is_ok());
        assert!(u.take_publishing(&alice, "chat", rate, now).is_ok());
        assert!(
            u.take_publishing(&alice, "chat", rate, now).is_err(),
            "burst of 2"
        );
        assert!(
            u.take_publishing(&alice, "room", rate, now).is_ok(),
            "another namespace"
        );
        assert!(
            u.take_publishing(&bob, "chat", rate, now).is_ok(),
            "another user"
        );
        u.unregister("alice", 1);
        let alice = u.register("alice", 3, 2, now).unwrap();
        assert!(
            u.take_publishing(&alice, "chat", rate, now).is_ok(),
            "a fresh bucket"
        );
    }

    #[test]
    fn connections_per_user_are_bounded_and_the_user_goes_with_the_last() {
        let now = Instant::now();
        let mut u = Users::new(Rate::new(10, 10));
        let a = u.register("alice", 1, 2, now).unwrap();
        let b = u.register("alice", 2, 2, now).unwrap();
        assert!(Rc::ptr_eq(&a, &b), "one name per user");
        assert!(u.register("alice", 3, 2, now).is_none(), "at the limit");
        assert_eq!(u.conns("alice"), &[1, 2]);
        u.unregister("alice", 1);
        assert_eq!(u.conns("alice"), &[2]);
        u.unregister("alice", 2);
        assert!(u.conns("alice").is_empty());
        assert!(u.register("bob", 4, 0, now).is_none());
    }

    #[test]
    fn the_bucket_refuses_then_the_sustained_rule_closes() {
        let now = Instant::now();
        let mut u = Users::new(Rate::new(1, 2));
        u.register("alice", 1, 4, now);
        assert_eq!(u.admit("alice", now), Admission::Allowed);
        assert_eq!(u.admit("alice", now), Admission::Allowed);
        let refused = |a: Admission| match a {
            Admission::Limited { sustained, wait } => {
                assert!(wait > Duration::ZERO);
                sustained
            }
            Admission::Allowed => panic!("allowed past the burst"),
        };
        assert!(!refused(u.admit("alice", now)));
        assert!(!refused(u.admit("alice", now)));
        assert!(refused(u.admit("alice", now)), "more than burst refusals");
        let later = now + SUSTAINED + Duration::from_secs(1);
        assert_eq!(u.admit("alice", later), Admission::Allowed, "refilled");
    }

    #[test]
    fn status_changes_are_reported_once() {
        let now = Instant::now();
        let mut u = Users::new(Rate::new(1, 1));
        u.register("alice", 1, 4, now);
        assert_eq!(u.status("alice"), Status::Online);
        assert!(u.set_status("alice", Status::Away));
        assert!(!u.set_status("alice", Status::Away));
        assert_eq!(u.status("alice"), Status::Away);
        assert!(!u.set_status("nobody", Status::Away));
    }
}
