//! The server API's endpoints (`docs/protocol.md` §6): each reads its JSON body, asks the
//! shards through `ops`, and answers JSON. Errors are `{"error":"<code>","message":".."}`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::admin::Admin;
use super::endpoint::Endpoint;
use crate::protocol::bodies::{Broadcast, Data, Disconnect, Publish, Send};
use crate::revocation::Rule;
use crate::route::ops::{self, OpError, Scope};

/// An HTTP answer before hyper sees it.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(status: u16, value: &serde_json::Value) -> Answer {
        Answer {
            status,
            body: Bytes::from(value.to_string()),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    pub fn ok(value: serde_json::Value) -> Answer {
        Answer::json(200, &value)
    }

    pub fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer::json(status, &json!({"error": code, "message": message}))
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_string()));
        self
    }
}

impl From<OpError> for Answer {
    fn from(e: OpError) -> Answer {
        match e {
            OpError::BadRequest(m) => Answer::error(400, "bad_request", &m),
            OpError::NotFound(m) => Answer::error(404, "not_found", &m),
            OpError::Unavailable(m) => Answer::error(503, "unavailable", &m),
        }
    }
}

fn health() -> Answer {
    Answer::ok(json!({"status": "ok"}))
}

fn ready(shared: &crate::shared::Shared) -> Answer {
    if shared.is_ready() {
        Answer::ok(json!({"status": "ready"}))
    } else {
        let why = if shared.is_draining() {
            "draining"
        } else if shared.ready.load(Ordering::Acquire) {
            "a shard stopped serving"
        } else {
            "starting"
        };
        Answer::error(503, "unavailable", why)
    }
}

fn metrics(registry: &crate::metrics::Registry) -> Answer {
    Answer {
        status: 200,
        body: Bytes::from(crate::metrics::render(registry)),
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        headers: Vec::new(),
    }
}

pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body)
        .map_err(|e| Answer::error(400, "bad_request", &format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
struct Subscription {
    user: String,
    channel: String,
}

/// `{"jti"}` (optionally with the token's `exp`) or `{"user","issued_before"}`.
#[derive(Deserialize)]
struct Revoke {
    jti: Option<String>,
    exp: Option<u64>,
    user: Option<String>,
    issued_before: Option<u64>,
}

/// Answers a request for `endpoint` (for a server API endpoint, one whose key was accepted).
pub async fn call(
    admin: &Admin,
    endpoint: Endpoint,
    path: &str,
    query: &str,
    body: &[u8],
    cause: Arc<str>,
) -> Answer {
    match run(admin, endpoint, path, query, body, cause).await {
        Ok(a) | Err(a) => a,
    }
}

async fn run(
    admin: &Admin,
    endpoint: Endpoint,
    path: &str,
    query: &str,
    body: &[u8],
    cause: Arc<str>,
) -> Result<Answer, Answer> {
    let shared = &admin.shared;
    let received = Some(Instant::now());
    let cause = Some(cause);
    Ok(match endpoint {
        Endpoint::Publish => {
            let b: Publish = parse(body)?;
            if shared.config.keeps_history(&b.channel) {
                let offset = ops::publish_sequenced(shared, &b.channel, &b.data, received).await?;
                Answer::ok(json!({ "offset": offset }))
            } else {
                ops::publish(shared, &b.channel, &b.data, received, Scope::Cluster)?;
                Answer::ok(json!({}))
            }
        }
        Endpoint::Broadcast => {
            let b: Broadcast = parse(body)?;
            ops::broadcast(shared, &b.channels, &b.data, received, Scope::Cluster)?;
            Answer::ok(json!({}))
        }
        Endpoint::Send => {
            let b: Send = parse(body)?;
            ops::send(shared, &b.user, &b.data, Scope::Cluster)?;
            Answer::ok(json!({}))
        }
        Endpoint::BroadcastAll => {
            let b: Data = parse(body)?;
            ops::broadcast_all(shared, &b.data, Scope::Cluster);
            Answer::ok(json!({}))
        }
        Endpoint::Disconnect => {
            let b: Disconnect = parse(body)?;
            let reason = b.reason.unwrap_or_default();
            let closed = ops::disconnect(shared, &b.user, &reason, cause, Scope::Cluster).await?;
            Answer::ok(json!({"closed": closed}))
        }
        Endpoint::Revoke => revoke(admin, parse(body)?, cause).await?,
        Endpoint::Subscribe | Endpoint::Unsubscribe => {
            let b: Subscription = parse(body)?;
            let subscribe = endpoint == Endpoint::Subscribe;
            let n = ops::subscription(shared, &b.user, &b.channel, subscribe, cause).await?;
            Answer::ok(json!({"connections": n}))
        }
        Endpoint::Presence => {
            let channel = channel_in(path, "/api/presence/")?;
            let users = ops::presence(shared, &channel).await?;
            let users: Vec<serde_json::Value> = users
                .iter()
                .map(|u| {
                    let info = RawValue::from_string(u.info.to_string()).ok();
                    json!({"user": &*u.user, "conns": u.conns, "status": u.status.as_str(), "info": info})
                })
                .collect();
            Answer::ok(json!({"channel": channel, "users": users}))
        }
        Endpoint::History => {
            let channel = channel_in(path, "/api/history/")?;
            history(shared, &channel, query).await?
        }
        Endpoint::Info => info(shared),
        Endpoint::Health => health(),
        Endpoint::Ready => ready(shared),
        Endpoint::Metrics => metrics(&admin.registry),
        Endpoint::Mute => super::mutes::mute(admin, parse(body)?, cause).await?,
        Endpoint::Unmute => super::mutes::unmute(admin, parse(body)?, cause).await?,
        Endpoint::Mutes => super::mutes::list(admin, query).await?,
        Endpoint::OpenApi => super::openapi::answer(),
    })
}

async fn revoke(admin: &Admin, b: Revoke, cause: Option<Arc<str>>) -> Result<Answer, Answer> {
    let shared = &admin.shared;
    let now = crate::auth::unix_now();
    let ttl = shared.config.revocation_ttl.as_secs();
    let rule = match b {
        Revoke {
            jti: Some(jti),
            user: None,
            ..
        } if !jti.is_empty() && jti.len() <= 256 => Rule::Jti {
            jti: jti.into(),
            until: b.exp.map_or(now.saturating_add(ttl), |exp| {
                exp.saturating_add(shared.config.jwt_leeway.as_secs())
            }),
        },
        Revoke {
            jti: None,
            user: Some(user),
            issued_before: Some(before),
            ..
        } if (1..=128).contains(&user.len()) => Rule::User {
            user: user.into(),
            issued_before: before,
            until: before.max(now).saturating_add(ttl),
        },
        _ => {
            return Err(Answer::error(
                400,
                "bad_request",
                r#"expected {"jti":".."} or {"user":"..","issued_before":<unix seconds>}"#,
            ))
        }
    };
    let done = ops::revoke(shared, Arc::new(rule.clone()), cause).await?;
    let stored = rule.once_seen(done.seen_exp, shared.config.jwt_leeway.as_secs());
    let persisted = match &admin.store {
        None => false,
        Some(store) => match store.save(&stored).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a revocation in Redis; it holds until this process restarts");
                false
            }
        },
    };
    Ok(Answer::ok(
        json!({"closed": done.closed, "persisted": persisted}),
    ))
}

/// The channel named by the rest of the path, percent-decoded (`#` arrives as `%23`).
fn channel_in(path: &str, prefix: &str) -> Result<String, Answer> {
    let raw = path.strip_prefix(prefix).unwrap_or("");
    let channel = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Answer::error(400, "bad_request", "the channel is not UTF-8"))?;
    if !crate::channel::valid_name(&channel) {
        return Err(Answer::error(400, "bad_request", "invalid channel name"));
    }
    Ok(channel.into_owned())
}

/// `GET /api/history/{channel}?since=N&limit=M`: like the `history` reply.
async fn history(
    shared: &crate::shared::Shared,
    channel: &str,
    query: &str,
) -> Result<Answer, Answer> {
    let mut since = None;
    let mut limit = 100usize;
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        let bad = |what: &str| {
            Answer::error(
                400,
                "bad_request",
                &format!("{what} must be a non-negative integer"),
            )
        };
        match k {
            "since" => since = Some(v.parse::<u64>().map_err(|_| bad("since"))?),
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .map_err(|_| bad("limit"))?
                    .clamp(1, 10_000)
            }
            _ => {}
        }
    }
    let h = ops::history(shared, channel, since, limit).await?;
    let publications = RawValue::from_string(h.publications)
        .map_err(|_| Answer::error(500, "internal", "history"))?;
    Ok(Answer::ok(
        json!({"channel": channel, "epoch": &*h.epoch, "publications": publications}),
    ))
}

fn info(shared: &crate::shared::Shared) -> Answer {
    let per_shard: Vec<usize> = shared
        .shard_connections
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    Answer::ok(json!({
        "instance": shared.instance,
        "shards": shared.shards(),
        "connections": per_shard.iter().sum::<usize>(),
        "connections_per_shard": per_shard,
        "uptime_s": shared.metrics.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "ready": shared.ready.load(Ordering::Acquire),
        "draining": shared.is_draining(),
        "relay": shared.relay.as_ref().map(|r| json!({
            "up": r.is_up(),
            "peers": *r.peers.lock().unwrap_or_else(|e| e.into_inner()),
        })),
    }))
}
