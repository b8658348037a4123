//! The shard's cache of tokens found in the token store: digest -> identity, each kept for
//! `token_cache_ttl` (and never past the token's `exp`), at most `token_cache_entries`. A
//! revocation by user forgets that user's entries, so the next connect asks Redis again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::auth::Identity;

pub struct Tokens {
    entries: HashMap<[u8; 32], (Identity, Instant)>,
    ttl: Duration,
    max: usize,
}

impl Tokens {
    pub fn new(ttl: Duration, max: usize) -> Tokens {
        Tokens {
            entries: HashMap::new(),
            ttl,
            max,
        }
    }

    /// The identity of a cached token still fresh at `now` (unix seconds `now_s` for `exp`).
    pub fn get(&mut self, digest: &[u8; 32], now: Instant, now_s: u64) -> Option<Identity> {
        let (identity, until) = self.entries.get(digest)?;
        if *until > now && identity.expires_at > now_s {
            return Some(identity.clone());
        }
        self.entries.remove(digest);
        None
    }

    /// Keeps a token found in the store; when full, stale entries go first, else any one.
    pub fn insert(&mut self, digest: [u8; 32], identity: Identity, now: Instant) {
        if self.max == 0 || self.ttl.is_zero() {
            return;
        }
        if self.entries.len() >= self.max && !self.entries.contains_key(&digest) {
            self.entries.retain(|_, (_, until)| *until > now);
            if self.entries.len() >= self.max {
                if let Some(any) = self.entries.keys().next().copied() {
                    self.entries.remove(&any);
                }
            }
        }
        self.entries.insert(digest, (identity, now + self.ttl));
    }

    /// Forgets every token of `user` (a revocation by user).
    pub fn forget_user(&mut self, user: &str) {
        if !self.entries.is_empty() {
            self.entries.retain(|_, (id, _)| id.user() != user);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str, exp: u64) -> Identity {
        crate::auth::Claims {
            user: user.into(),
            expires_at: exp,
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn hits_last_the_ttl_and_never_past_exp() {
        let now = Instant::now();
        let mut t = Tokens::new(Duration::from_secs(10), 8);
        t.insert([1; 32], id("a", 100), now);
        assert_eq!(t.get(&[1; 32], now, 50).unwrap().user(), "a");
        assert!(t.get(&[1; 32], now, 100).is_none(), "expired token");
        t.insert([1; 32], id("a", 100), now);
        assert!(t.get(&[1; 32], now + Duration::from_secs(11), 50).is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn bounded_and_emptied_by_user() {
        let now = Instant::now();
        let mut t = Tokens::new(Duration::from_secs(10), 2);
        t.insert([1; 32], id("a", 100), now);
        t.insert([2; 32], id("b", 100), now);
        t.insert([3; 32], id("a", 100), now);
        assert_eq!(t.len(), 2);
        t.forget_user("a");
        assert!(t.len() <= 1);
        assert!(t.get(&[3; 32], now, 0).is_none());
        let mut off = Tokens::new(Duration::from_secs(10), 0);
        off.insert([1; 32], id("a", 100), now);
        assert_eq!(off.len(), 0);
    }
}
