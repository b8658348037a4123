//! Operations any thread may ask of the hub, through the shards' inboxes: what the server
//! API (and the Redis egress) do. Frames are encoded once here and shared by every shard.
//! Operations that need an answer wait for the shards with a timeout and never block a
//! shard.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use super::inbox::{Cause, ShardMsg};
use super::relay_queue::Topic;
use crate::protocol;
use crate::protocol::envelope::Kind;
use crate::shared::Shared;

mod history;
mod mutes;
mod users;
pub use history::{history, publish_sequenced};
pub use mutes::{mute, mutes, unmute, unmute_nowait};
pub use users::{
    disconnect, disconnect_nowait, install_rule, local_presence, presence, remote_presence, revoke,
    subscription,
};

/// How long an operation waits for the shards' answers.
pub const SHARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an operation could not be carried out; the API maps each to a status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
}

fn check_channel(channel: &str) -> Result<(), OpError> {
    if crate::channel::valid_name(channel) {
        Ok(())
    } else {
        Err(OpError::BadRequest(format!(
            "invalid channel name {channel:?}: 1..255 bytes of A-Z a-z 0-9 _ - : . @ / = #"
        )))
    }
}

fn check_user(user: &str) -> Result<(), OpError> {
    if (1..=128).contains(&user.len()) {
        Ok(())
    } else {
        Err(OpError::BadRequest("user must be 1..128 bytes".into()))
    }
}

/// How far an operation reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This instance only (what arrives from the relay, or egress every instance receives).
    Local,
    /// This instance, and the others through the relay when Redis is configured.
    Cluster,
}

/// Queues a relay message to the other instances when the scope asks for it.
fn relay(
    shared: &Shared,
    scope: Scope,
    topic: Topic,
    kind: Kind,
    cause: &Cause,
    target: &str,
    payload: &[u8],
) {
    if let (Scope::Cluster, Some(r)) = (scope, shared.relay.as_ref()) {
        r.send(
            &shared.instance,
            topic,
            kind,
            cause.as_deref(),
            target,
            payload,
        );
    }
}

/// A publication from a backend: subscribers get `message` without `from`. On a channel
/// with history it is sequenced by the channel's owner shard (use `publish_sequenced` to
/// learn its offset).
pub fn publish(
    shared: &Shared,
    channel: &str,
    data: &RawValue,
    stamp: Option<Instant>,
    scope: Scope,
) -> Result<(), OpError> {
    check_channel(channel)?;
    if scope == Scope::Cluster {
        // Egress to every instance (`Scope::Local`) would be reported by each of them.
        super::webhook_queue::publication(shared, channel, data.get(), None);
    }
    if shared.config.keeps_history(channel) {
        // `here` is None: the sequencer is never handed back to a service.
        let _ = super::sequence(shared, None, channel, data.get(), None, None, stamp);
        return Ok(());
    }
    let frame = protocol::message(channel, data.get(), None);
    publish_frame(shared, channel, frame, stamp, scope);
    Ok(())
}

/// The same data to several channels (all names are checked before anything is sent).
pub fn broadcast(
    shared: &Shared,
    channels: &[String],
    data: &RawValue,
    stamp: Option<Instant>,
    scope: Scope,
) -> Result<(), OpError> {
    if channels.is_empty() {
        return Err(OpError::BadRequest("channels must not be empty".into()));
    }
    for ch in channels {
        check_channel(ch)?;
    }
    for ch in channels {
        publish(shared, ch, data, stamp, scope)?;
    }
    Ok(())
}

/// A finished publication frame: to this instance's subscribers, and with
/// `Scope::Cluster` to the other instances' too.
pub fn publish_frame(
    shared: &Shared,
    channel: &str,
    frame: Bytes,
    stamp: Option<Instant>,
    scope: Scope,
) {
    if scope == Scope::Cluster {
        super::relay_publication(shared, channel, &frame, None);
    }
    super::deliver(shared, None, channel, &frame, None, stamp);
}

/// A direct message from a backend to every connection of `user` (`direct` without `from`).
pub fn send(shared: &Shared, user: &str, data: &RawValue, scope: Scope) -> Result<(), OpError> {
    check_user(user)?;
    let frame = protocol::direct(data.get(), None);
    if scope == Scope::Cluster {
        super::relay_direct(shared, user, &frame);
    }
    let _ = super::send(shared, None, user, frame);
    Ok(())
}

/// `broadcast` to every connection.
pub fn broadcast_all(shared: &Shared, data: &RawValue, scope: Scope) {
    let frame = protocol::broadcast(data.get());
    let payload = crate::ws::frame::payload_of(&frame);
    relay(
        shared,
        scope,
        Topic::Cluster,
        Kind::BroadcastAll,
        &None,
        "",
        &payload,
    );
    for shard in 0..shared.shards() {
        shared.send(
            shard,
            ShardMsg::BroadcastAll {
                frame: frame.clone(),
            },
        );
    }
}

type Wait<T> = tokio::sync::oneshot::Receiver<T>;

/// Sends every shard the message `ask` makes around a reply channel, then waits for all
/// the answers (for at most `SHARD_TIMEOUT` in all).
fn ask_every_shard<T>(
    shared: &Shared,
    ask: impl Fn(super::inbox::Reply<T>) -> ShardMsg,
) -> impl std::future::Future<Output = Result<Vec<T>, OpError>> {
    let waits = (0..shared.shards())
        .map(|shard| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            shared.send(shard, ask(tx));
            rx
        })
        .collect();
    gather(waits)
}

/// Waits for one shard's answer.
async fn answer<T>(rx: Wait<T>) -> Result<T, OpError> {
    Ok(gather(vec![rx]).await?.pop().expect("one answer"))
}

/// Waits for every shard's answer, for at most `SHARD_TIMEOUT` in all.
async fn gather<T>(waits: Vec<Wait<T>>) -> Result<Vec<T>, OpError> {
    let all = async {
        let mut out = Vec::with_capacity(waits.len());
        for rx in waits {
            out.push(rx.await.map_err(|_| {
                OpError::Unavailable(
                    "no answer: the hub is stopping, or Redis is not reachable".into(),
                )
            })?);
        }
        Ok(out)
    };
    tokio::time::timeout(SHARD_TIMEOUT, all)
        .await
        .unwrap_or_else(|_| {
            Err(OpError::Unavailable(
                "a shard did not answer in time".into(),
            ))
        })
}
