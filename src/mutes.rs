//! Mutes: a user may not publish on some channels until a time (docs/chat.md). Set through
//! the server API (`/api/mute`), kept by the user's shard (where all of the user's
//! connections live, so the check is a lookup without a lock), sent to the other instances
//! through Redis, and stored there (`<prefix>mutes`) so that they outlive a restart.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One mute, as the API receives and lists it and as it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    pub user: Arc<str>,
    /// Channels it covers: an exact name or a prefix ending in `*`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Arc<str>>,
    /// ...or a whole namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Arc<str>>,
    /// Unix seconds when it ends; none: until it is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Arc<str>>,
}

impl Mute {
    /// A mute names one user and exactly one of a channel pattern and a namespace.
    pub fn valid(&self) -> bool {
        let scope = match (&self.channel, &self.namespace) {
            (Some(s), None) | (None, Some(s)) => s,
            _ => return false,
        };
        (1..=128).contains(&self.user.len()) && (1..=255).contains(&scope.len())
    }

    /// What it covers, as one string: `channel:<pattern>` or `namespace:<name>` (the key of
    /// the mute beside its user; a new mute of the same scope replaces the old one).
    pub fn scope(&self) -> String {
        match (&self.channel, &self.namespace) {
            (Some(c), _) => format!("channel:{c}"),
            (None, Some(n)) => format!("namespace:{n}"),
            (None, None) => String::new(),
        }
    }

    /// The key in the Redis hash.
    pub fn key(&self) -> String {
        format!("{}\n{}", self.user, self.scope())
    }

    fn covers(&self, channel: &str) -> bool {
        match (&self.channel, &self.namespace) {
            (Some(pattern), _) => crate::channel::pattern_matches(pattern, channel),
            (None, Some(ns)) => crate::channel::namespace_of(channel) == &**ns,
            (None, None) => false,
        }
    }

    pub fn in_force(&self, now: u64) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// One shard's mutes, by user.
#[derive(Default)]
pub struct Mutes {
    by_user: HashMap<Arc<str>, Vec<Mute>>,
}

impl Mutes {
    /// Adds a mute, replacing one of the same user and scope.
    pub fn add(&mut self, mute: Mute) {
        let list = self.by_user.entry(mute.user.clone()).or_default();
        let scope = mute.scope();
        list.retain(|m| m.scope() != scope);
        list.push(mute);
    }

    /// Lifts the user's mute of that scope; true when there was one.
    pub fn remove(&mut self, user: &str, scope: &str) -> bool {
        let Some(list) = self.by_user.get_mut(user) else {
            return false;
        };
        let before = list.len();
        list.retain(|m| m.scope() != scope);
        let removed = list.len() != before;
        if list.is_empty() {
            self.by_user.remove(user);
        }
        removed
    }

    /// The mute in force that keeps `user` from publishing on `channel`, if any (expired
    /// ones are dropped on the way).
    pub fn of(&mut self, user: &str, channel: &str, now: u64) -> Option<&Mute> {
        let list = self.by_user.get_mut(user)?;
        list.retain(|m| m.in_force(now));
        if list.is_empty() {
            self.by_user.remove(user);
            return None;
        }
        self.by_user.get(user)?.iter().find(|m| m.covers(channel))
    }

    /// Every mute in force.
    pub fn all(&self, now: u64) -> Vec<Mute> {
        let all = self.by_user.values().flatten();
        all.filter(|m| m.in_force(now)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mute(channel: Option<&str>, namespace: Option<&str>, until: Option<u64>) -> Mute {
        Mute {
            user: "u1".into(),
            channel: channel.map(Into::into),
            namespace: namespace.map(Into::into),
            until,
            reason: None,
        }
    }

    #[test]
    fn a_mute_names_one_scope() {
        assert!(mute(Some("chat:*"), None, None).valid());
        assert!(mute(None, Some("chat"), Some(9)).valid());
        assert!(!mute(None, None, None).valid());
        assert!(!mute(Some("chat:1"), Some("chat"), None).valid());
        let long = "n".repeat(256);
        assert!(!mute(Some("chat:1"), Some(&long), None).valid());
    }

    #[test]
    fn mutes_cover_patterns_and_namespaces_until_they_end() {
        let mut m = Mutes::default();
        m.add(mute(Some("chat:eu*"), None, Some(100)));
        m.add(mute(None, Some("lobby"), None));
        assert!(m.of("u1", "chat:eu-1", 50).is_some());
        assert!(m.of("u1", "chat:us-1", 50).is_none());
        assert!(m.of("u1", "lobby:main", 50).is_some());
        assert!(m.of("u2", "lobby:main", 50).is_none(), "another user");
        assert!(m.of("u1", "chat:eu-1", 100).is_none(), "over at `until`");
        assert_eq!(m.all(100).len(), 1);
        assert!(m.remove("u1", "namespace:lobby"));
        assert!(m.of("u1", "lobby:main", 50).is_none());
        assert!(!m.remove("u1", "namespace:lobby"));
    }

    #[test]
    fn a_new_mute_of_the_same_scope_replaces_the_old() {
        let mut m = Mutes::default();
        m.add(mute(None, Some("chat"), Some(10)));
        m.add(mute(None, Some("chat"), Some(20)));
        assert_eq!(m.all(0).len(), 1);
        assert!(m.of("u1", "chat:1", 15).is_some());
    }
}
