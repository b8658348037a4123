//! What backends (the server API, later the Redis egress) ask of a shard: broadcast to
//! every connection, disconnect a user, revoke tokens, subscribe a user's connections
//! server-side. Also the token check every authentication goes through, with the
//! shard's copy of the revocation rules.

use std::sync::Arc;

use bytes::Bytes;

use super::conn::Stage;
use super::core::Core;
use super::fanout::Subscribed;
use crate::auth::{unix_now, AuthError, Identity};
use crate::protocol;
use crate::revocation::Rule;
use crate::route::inbox::{Cause, Reply, Revoked};

impl Core {
    /// Verifies a token and checks it against the revocation rules; failures are counted
    /// and logged (never the token itself).
    pub(super) fn verify_token(&mut self, key: usize, token: &str) -> Result<Identity, AuthError> {
        let result = self.shared.verifier.verify(token).and_then(|id| {
            let leeway = self.shared.config.jwt_leeway.as_secs();
            if self.revoked.check(&id, unix_now(), leeway) {
                Err(AuthError::Revoked)
            } else {
                Ok(id)
            }
        });
        if let Err(e) = &result {
            crate::metrics::local(|m| m.auth_failure(e.reason()));
            tracing::info!(peer = %self.conns[key].peer, shard = self.index, reason = e.reason(), "token refused");
        }
        result
    }

    /// The slab keys of `user`'s connections on this shard.
    pub(super) fn user_conns(&self, user: &str) -> Vec<usize> {
        self.users.conns(user).to_vec()
    }

    /// The slab keys of this shard's open (authenticated) connections.
    fn open_conns(&self) -> Vec<usize> {
        self.conns
            .iter()
            .filter(|(_, c)| c.stage() == Stage::Open)
            .map(|(k, _)| k)
            .collect()
    }

    /// `broadcast_all`: the frame to every open connection of the shard.
    pub fn broadcast_all(&mut self, frame: &Bytes) {
        let keys: Vec<usize> = self.open_conns();
        crate::metrics::local(|m| crate::metrics::bump(&m.deliveries, keys.len() as u64));
        self.send_each(&keys, frame);
    }

    /// Closes every connection of `user` with 4004.
    pub fn disconnect_user(
        &mut self,
        user: &str,
        reason: &str,
        cause: &Cause,
        reply: Option<Reply<usize>>,
    ) {
        let keys = self.user_conns(user);
        for &key in &keys {
            self.close_by_backend(key, reason, cause);
        }
        if let Some(reply) = reply {
            let _ = reply.send(keys.len());
        }
    }

    /// A new revocation rule: kept for later checks, and the matching connections closed.
    pub fn revoke(&mut self, rule: &Rule, cause: &Cause, reply: Option<Reply<Revoked>>) {
        let now = unix_now();
        let mut out = Revoked::default();
        let candidates: Vec<usize> = match rule {
            Rule::User { user, .. } => {
                // The next connect with a cached opaque token asks the store again.
                self.tokens.forget_user(user);
                self.user_conns(user)
            }
            Rule::Jti { .. } => self.open_conns(),
        };
        for key in candidates {
            let Some(id) = self.conns[key].phase.open().map(|s| s.identity.clone()) else {
                continue;
            };
            if rule.matches(&id) {
                out.closed += 1;
                out.seen_exp = out.seen_exp.max(Some(id.expires_at));
                self.close_by_backend(key, "token revoked", cause);
            }
        }
        let rule = rule.once_seen(out.seen_exp, self.shared.config.jwt_leeway.as_secs());
        self.revoked.insert(&rule, now);
        if let Some(reply) = reply {
            let _ = reply.send(out);
        }
    }

    /// Server-side (un)subscription of every connection of `user` on this shard. Each
    /// connection is told with an unsolicited `subscribed` / `unsubscribed` (no `id`).
    pub fn server_subscription(
        &mut self,
        user: &str,
        channel: &Arc<str>,
        subscribe: bool,
        cause: &Cause,
        reply: Option<Reply<usize>>,
    ) {
        let keys = self.user_conns(user);
        let mut changed = 0;
        for key in keys {
            if self.conns[key].stage() != Stage::Open {
                continue;
            }
            let done = if subscribe {
                match self.subscribe(key, channel) {
                    Subscribed::New => {
                        self.send(key, protocol::reply(None, "subscribed", Some(channel)));
                        self.presence_add(key, channel);
                        true
                    }
                    Subscribed::Already => false,
                    Subscribed::LimitExceeded => {
                        tracing::info!(conn = %format_args!("{:x}", self.conns[key].id), channel = %channel,
                            correlation_id = cause.as_deref(), "server-side subscription over the connection's limit");
                        false
                    }
                }
            } else {
                self.unsubscribe(key, channel)
            };
            if done {
                changed += 1;
                if !subscribe {
                    self.send(key, protocol::reply(None, "unsubscribed", Some(channel)));
                }
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(changed);
        }
    }

    fn close_by_backend(&mut self, key: usize, reason: &str, cause: &Cause) {
        let conn = &mut self.conns[key];
        if conn.stage() != Stage::Open {
            return;
        }
        conn.cause = cause.clone();
        tracing::info!(conn = %format_args!("{:x}", conn.id), user = conn.phase.open().map_or("", |s| &*s.user),
            shard = self.index, reason, correlation_id = cause.as_deref(), "closing for the server API");
        self.close(key, 4004, reason);
    }
}
