//! Token revocation: by `jti`, or by user for tokens issued before a time.
//!
//! Every shard keeps its own copy of the rules (the control plane sends each new rule to
//! every shard's inbox), so the check at connect is two hash lookups on the accepting
//! shard, without a lock. A rule lives until the tokens it refuses have expired:
//!
//! - by `jti`: until that token's `exp` when it is known (given in the request, or seen on a
//!   connection or at connect), else for `revocation_ttl`;
//! - by user and `issued_before`: for `revocation_ttl` after `issued_before` (a token issued
//!   earlier and living longer than that would be accepted again; keep token lifetimes
//!   under `revocation_ttl`). A token without `iat` cannot show it is newer and is refused.
//!
//! With Redis configured the rules are also written to the hash `<prefix>revoked` and read
//! back at start, so they survive a restart.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::auth::Identity;

/// One revocation, as the API receives it and as it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rule {
    Jti {
        jti: Arc<str>,
        /// Unix seconds after which the rule can be forgotten.
        until: u64,
    },
    User {
        user: Arc<str>,
        issued_before: u64,
        until: u64,
    },
}

impl Rule {
    pub fn matches(&self, id: &Identity) -> bool {
        match self {
            Rule::Jti { jti, .. } => id.jti() == Some(jti.as_ref()),
            Rule::User {
                user,
                issued_before,
                ..
            } => id.user() == &**user && id.issued_at.is_none_or(|iat| iat < *issued_before),
        }
    }

    pub fn until(&self) -> u64 {
        match self {
            Rule::Jti { until, .. } | Rule::User { until, .. } => *until,
        }
    }

    /// The key of the rule in the Redis hash (one rule per jti, one per user).
    pub fn key(&self) -> String {
        match self {
            Rule::Jti { jti, .. } => format!("jti:{jti}"),
            Rule::User { user, .. } => format!("user:{user}"),
        }
    }

    /// The rule as it is kept once the matching tokens were seen: a `jti` rule lives no
    /// longer than that token's `exp` (plus `leeway`); a user rule is unchanged.
    pub fn once_seen(&self, seen_exp: Option<u64>, leeway: u64) -> Rule {
        let mut r = self.clone();
        if let (Rule::Jti { until, .. }, Some(exp)) = (&mut r, seen_exp) {
            *until = (*until).min(exp.saturating_add(leeway));
        }
        r
    }
}

/// A shard's copy of the rules.
#[derive(Default)]
pub struct Revocations {
    jti: HashMap<Arc<str>, u64>,
    /// User -> (issued_before, until).
    users: HashMap<Arc<str>, (u64, u64)>,
    swept_at: usize,
}

impl Revocations {
    /// Adds a rule (a later rule for the same user widens `issued_before`).
    pub fn insert(&mut self, rule: &Rule, now: u64) {
        match rule {
            Rule::Jti { jti, until } => {
                let e = self.jti.entry(jti.clone()).or_insert(0);
                *e = (*e).max(*until);
            }
            Rule::User {
                user,
                issued_before,
                until,
            } => {
                let e = self.users.entry(user.clone()).or_insert((0, 0));
                *e = (e.0.max(*issued_before), e.1.max(*until));
            }
        }
        if self.len() > 2 * self.swept_at.max(512) {
            self.sweep(now);
        }
    }

    /// Is this token revoked? When a `jti` rule matches, its life is shortened to the
    /// token's `exp` (plus `leeway`): the token cannot be used after that anyway.
    pub fn check(&mut self, id: &Identity, now: u64, leeway: u64) -> bool {
        if let Some(jti) = id.jti() {
            if let Some(until) = self.jti.get_mut(jti) {
                if *until > now {
                    *until = (*until).min(id.expires_at.saturating_add(leeway));
                    return true;
                }
            }
        }
        match self.users.get(id.user()) {
            Some(&(before, until)) if until > now => id.issued_at.is_none_or(|iat| iat < before),
            _ => false,
        }
    }

    pub fn len(&self) -> usize {
        self.jti.len() + self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the rules whose tokens have all expired.
    pub fn sweep(&mut self, now: u64) {
        self.jti.retain(|_, until| *until > now);
        self.users.retain(|_, (_, until)| *until > now);
        self.swept_at = self.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str, jti: Option<&str>, iat: Option<u64>, exp: u64) -> Identity {
        crate::auth::Claims {
            user: user.into(),
            expires_at: exp,
            issued_at: iat,
            jti: jti.map(String::from),
            channels: vec![],
            publish: vec![],
            info: "{}".into(),
        }
        .into()
    }

    #[test]
    fn by_jti_until_the_token_expires() {
        let mut r = Revocations::default();
        r.insert(
            &Rule::Jti {
                jti: "t1".into(),
                until: 10_000,
            },
            100,
        );
        assert!(r.check(&id("u", Some("t1"), None, 500), 100, 5));
        assert!(!r.check(&id("u", Some("t2"), None, 500), 100, 5));
        // Seen with exp 500: forgotten after 505.
        r.sweep(506);
        assert!(r.is_empty());
    }

    #[test]
    fn by_user_refuses_older_tokens_only() {
        let mut r = Revocations::default();
        let rule = Rule::User {
            user: "u".into(),
            issued_before: 1000,
            until: 5000,
        };
        r.insert(&rule, 900);
        assert!(r.check(&id("u", None, Some(999), 2000), 1001, 0));
        assert!(r.check(&id("u", None, None, 2000), 1001, 0));
        assert!(!r.check(&id("u", None, Some(1000), 2000), 1001, 0));
        assert!(!r.check(&id("v", None, Some(1), 2000), 1001, 0));
        assert!(!r.check(&id("u", None, Some(999), 2000), 5001, 0));
        assert!(rule.matches(&id("u", None, Some(5), 9)));
        assert_eq!(
            rule.once_seen(Some(10), 5),
            rule,
            "user rules keep their life"
        );
        let jti = Rule::Jti {
            jti: "t".into(),
            until: 10_000,
        };
        assert_eq!(jti.once_seen(Some(500), 5).until(), 505);
        assert_eq!(jti.once_seen(None, 5).until(), 10_000);
    }

    #[test]
    fn a_token_expiring_at_the_end_of_time_does_not_overflow() {
        let mut r = Revocations::default();
        let rule = Rule::Jti {
            jti: "far".into(),
            until: 10_000,
        };
        r.insert(&rule, 100);
        assert!(r.check(&id("u", Some("far"), None, u64::MAX), 100, 5));
        assert_eq!(rule.once_seen(Some(u64::MAX), 5).until(), 10_000);
    }

    #[test]
    fn rules_round_trip_as_json() {
        let rules = [
            Rule::Jti {
                jti: "a".into(),
                until: 7,
            },
            Rule::User {
                user: "b".into(),
                issued_before: 3,
                until: 9,
            },
        ];
        for rule in rules {
            let text = serde_json::to_string(&rule).unwrap();
            assert_eq!(serde_json::from_str::<Rule>(&text).unwrap(), rule);
        }
    }
}
