//! Credentials the hub cannot verify itself (docs/proxies.md): an opaque token is looked up
//! in the token store (the shard's cache, else Redis through `route::token_queue`), or sent
//! to the connect proxy (through the rpc queue, with its breaker and headers). The shard
//! never waits: the connection is held (its input kept, undecoded, and the auth timeout
//! running) until `ConnectDone` comes, then it goes on as a JWT connection would, through
//! `Core::authenticated`. A `refresh` with such a token is asked about the same way.

use std::rc::Rc;
use std::time::Instant;

use serde::Serialize;

use super::conn::{Phase, Stage};
use super::core::{Core, Step};
use crate::auth::opaque::{self, Refusal};
use crate::auth::{unix_now, AuthError, Identity};
use crate::protocol::{self, ErrorCode};
use crate::route::inbox::ConnRef;
use crate::route::rpc_queue::{Call, CallTrace, Caller, Purpose};
use crate::route::token_queue::Lookup;

/// What a credential needs.
pub(super) enum Credential {
    /// Verified now: a JWT, or a token the shard's cache holds.
    Verified(Identity),
    /// The token store or the connect proxy must be asked.
    Ask,
    Refused(AuthError),
}

/// What the connect proxy receives (docs/proxies.md, Connect proxy).
#[derive(Serialize)]
struct Outgoing<'a> {
    token: &'a str,
    conn: &'a str,
    addr: String,
    client: &'a str,
    instance: &'a str,
    headers: serde_json::Map<String, serde_json::Value>,
    request_id: &'a str,
    /// Asked again for a `refresh` of an open connection (of this user).
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    refresh: bool,
}

impl Core {
    /// Every token goes through here: a JWT is verified now (unless `connect_proxy_always`);
    /// an opaque one is found in the cache, or must be asked about.
    pub(super) fn credential(&mut self, key: usize, token: &str) -> Credential {
        let config = &self.shared.config;
        let proxy = config.connect_proxy_url.is_some();
        if (proxy && config.connect_proxy_always) || (!opaque::is_jwt(token) && !token.is_empty()) {
            if self.shared.tokens.is_some() && !config.connect_proxy_always {
                if let Some(id) = self.cached(token) {
                    return self.unrevoked(key, id);
                }
                return Credential::Ask;
            }
            if proxy {
                return Credential::Ask;
            }
        }
        match self.verify_token(key, token) {
            Ok(id) => Credential::Verified(id),
            Err(e) => Credential::Refused(e),
        }
    }

    fn cached(&mut self, token: &str) -> Option<Identity> {
        let id = self
            .tokens
            .get(&opaque::digest(token), Instant::now(), unix_now())?;
        if let Some(t) = self.shared.tokens.as_ref() {
            t.stats
                .cached
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Some(id)
    }

    fn unrevoked(&mut self, key: usize, id: Identity) -> Credential {
        let leeway = self.shared.config.jwt_leeway.as_secs();
        if self.revoked.check(&id, unix_now(), leeway) {
            crate::metrics::local(|m| m.auth_failure("revoked"));
            tracing::info!(peer = %self.conns[key].peer, shard = self.index, "token refused: revoked");
            return Credential::Refused(AuthError::Revoked);
        }
        Credential::Verified(id)
    }

    /// Queues the question about `token` for connection `key` (the store, else the proxy);
    /// the connection is held until the answer. `id`: the `auth` or `refresh` request's.
    pub(super) fn ask_about(
        &mut self,
        key: usize,
        token: &str,
        id: Option<u64>,
        refresh: bool,
        headers: &[(String, String)],
    ) -> Result<(), Refusal> {
        let shared = self.shared.clone();
        let conn = &self.conns[key];
        let to = ConnRef {
            shard: self.index,
            key,
            conn: conn.id,
            id,
        };
        let gone = self
            .rpc_gone
            .entry(conn.id)
            .or_insert_with(|| tokio::sync::watch::channel(()).0)
            .subscribe();
        let queued = match (&shared.tokens, shared.rpc.as_ref()) {
            (Some(tokens), _) if !shared.config.connect_proxy_always => tokens.queue(Lookup {
                digest: opaque::digest(token),
                to,
                refresh,
                gone,
            }),
            (_, Some(rpc)) => match rpc.routes.connect_proxy.as_ref() {
                Some(url) => {
                    let call = self.connect_call(key, url, token, to, refresh, headers, gone);
                    rpc.queue(call)
                }
                None => false,
            },
            _ => false,
        };
        if !queued {
            if self.conns[key].rpc_in_flight == 0 {
                self.rpc_gone.remove(&to.conn);
            }
            crate::metrics::local(|m| m.auth_failure("unavailable"));
            let reason = "too many connections are waiting for authentication; retry";
            return Err(Refusal::Unavailable(reason.into()));
        }
        let conn = &mut self.conns[key];
        conn.rpc_in_flight += 1;
        if !refresh {
            conn.connecting = true;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn connect_call(
        &mut self,
        key: usize,
        url: &hyper::Uri,
        token: &str,
        to: ConnRef,
        refresh: bool,
        headers: &[(String, String)],
        gone: tokio::sync::watch::Receiver<()>,
    ) -> Call {
        let conn = &self.conns[key];
        let user = conn.phase.open().map(|s| s.user.clone());
        self.rpc_calls += 1;
        let conn_id = format!("{:x}", conn.id);
        let request_id = format!("{conn_id}-{:x}", self.rpc_calls);
        let headers = headers
            .iter()
            .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let body = serde_json::to_vec(&Outgoing {
            token,
            conn: &conn_id,
            addr: conn.peer.to_string(),
            client: conn.client.as_deref().unwrap_or(""),
            instance: &self.shared.instance,
            headers,
            request_id: &request_id,
            user: user.as_deref(),
            refresh,
        })
        .expect("serializing strings");
        Call {
            url: url.clone(),
            body,
            to,
            caller: Caller {
                user: user.as_deref().unwrap_or("").into(),
                conn: conn_id.into(),
                request_id: request_id.into(),
            },
            queued_at: Instant::now(),
            timeout: self.shared.config.connect_proxy_timeout,
            gone,
            purpose: Purpose::Connect { refresh },
            trace: self.shared.traces.as_ref().map(|_| CallTrace {
                parent: None,
                method: None,
            }),
        }
    }

    /// The store or the proxy answered. At connect, a refusal closes the connection; an
    /// identity is handed to the connection's task, which goes on as for a JWT (hand-off
    /// included). For a `refresh`, the client gets `refreshed` or an error.
    pub fn connect_done(
        &mut self,
        to: ConnRef,
        refresh: bool,
        cache: Option<[u8; 32]>,
        result: Result<Box<Identity>, Refusal>,
    ) {
        if let (Some(digest), Ok(id)) = (cache, &result) {
            self.tokens.insert(digest, (**id).clone(), Instant::now());
        }
        if !self.call_done(to) {
            return; // the connection went meanwhile
        }
        if refresh {
            return self.refresh_done(to, result);
        }
        let conn = &mut self.conns[to.key];
        if !conn.connecting || conn.stage() != Stage::AwaitAuth {
            return; // the auth timeout closed it meanwhile
        }
        conn.connecting = false;
        match result {
            Ok(identity) => {
                self.authed.push((to.key, to.conn, identity));
                self.conns[to.key].signal();
            }
            Err(refusal) => {
                let reason = match refusal.close_code() {
                    opaque::RETRY_LATER => "unavailable",
                    _ => "refused",
                };
                crate::metrics::local(|m| m.auth_failure(reason));
                tracing::info!(peer = %conn.peer, shard = self.index, reason = refusal.reason(), "connect refused");
                self.close(to.key, refusal.close_code(), refusal.reason());
            }
        }
    }

    /// For the connection's task, woken by `connect_done`: the connection is authenticated.
    pub fn resume_authenticated(&mut self, key: usize) -> Option<Step> {
        let at = self.authed.iter().position(|(k, _, _)| *k == key)?;
        let (_, conn, identity) = self.authed.swap_remove(at);
        match self.conns.get(key) {
            Some(c) if c.id == conn && c.stage() == Stage::AwaitAuth => {
                Some(self.authenticated(key, identity))
            }
            _ => None,
        }
    }

    fn refresh_done(&mut self, to: ConnRef, result: Result<Box<Identity>, Refusal>) {
        let Some(session) = self.conns[to.key].phase.open().cloned() else {
            return;
        };
        let identity = match result {
            Ok(identity) => identity,
            Err(refusal) => {
                let code = match refusal.close_code() {
                    opaque::RETRY_LATER => ErrorCode::Unavailable,
                    4003 => ErrorCode::Forbidden,
                    _ => ErrorCode::Unauthorized,
                };
                let message = format!("token refused: {}", refusal.reason());
                return self.send(to.key, protocol::error(to.id, code, &message));
            }
        };
        if let Credential::Refused(e) = self.unrevoked(to.key, (*identity).clone()) {
            let message = format!("token refused: {e}");
            let frame = protocol::error(to.id, ErrorCode::Unauthorized, &message);
            return self.send(to.key, frame);
        }
        self.replace_identity(to.key, session.identity.user(), to.id, *identity);
    }

    /// A `refresh` accepted: same `sub` only; the deadlines move with the new token.
    pub(super) fn replace_identity(
        &mut self,
        key: usize,
        user: &str,
        id: Option<u64>,
        identity: Identity,
    ) {
        if identity.user() != user {
            crate::metrics::local(|m| m.auth_failure("other_user"));
            let message = "the token is for another user";
            return self.send(key, protocol::error(id, ErrorCode::Unauthorized, message));
        }
        let expires_at = identity.expires_at;
        if let Phase::Open(s) = &mut self.conns[key].phase {
            s.identity = Rc::new(identity);
        }
        self.schedule_expiry(key);
        if id.is_some() {
            self.send(key, protocol::refreshed(id, expires_at));
        }
    }

    /// Input of a connection waiting for its answer is kept, undecoded, up to one message.
    pub(super) fn hold_input(&mut self, key: usize, input: &[u8]) {
        let conn = &mut self.conns[key];
        conn.decoder.stash(input);
        if conn.decoder.held() > self.shared.config.max_message_size {
            conn.connecting = false;
            self.close(key, 1009, "too much sent before authentication");
        }
    }
}
