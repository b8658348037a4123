//! Operations any thread may ask of the hub, through the shards' inboxes: what the server
//! API (and the Redis egress) do. Frames are encoded once here and shared by every shard.
//! Operations that need an answer wait for the shards with a timeout and never block a
//! shard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::protocol::{self, PresenceUser};
use crate::revocation::Rule;
use crate::shard::inbox::{Cause, PartTo, Revoked, ShardMsg};
use crate::shared::Shared;

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

/// A publication from a backend: subscribers get `message` without `from`.
pub fn publish(
    shared: &Shared,
    channel: &str,
    data: &RawValue,
    stamp: Option<Instant>,
) -> Result<(), OpError> {
    check_channel(channel)?;
    deliver(
        shared,
        channel,
        protocol::message(channel, data.get(), None),
        stamp,
    );
    Ok(())
}

/// The same data to several channels (all names are checked before anything is sent).
pub fn broadcast(
    shared: &Shared,
    channels: &[String],
    data: &RawValue,
    stamp: Option<Instant>,
) -> Result<(), OpError> {
    if channels.is_empty() {
        return Err(OpError::BadRequest("channels must not be empty".into()));
    }
    for ch in channels {
        check_channel(ch)?;
    }
    for ch in channels {
        deliver(shared, ch, protocol::message(ch, data.get(), None), stamp);
    }
    Ok(())
}

/// Queues a finished frame to every shard with subscribers of `channel`.
pub fn deliver(shared: &Shared, channel: &str, frame: Bytes, stamp: Option<Instant>) {
    let mut shards = shared.interested(channel);
    if shards == 0 {
        return;
    }
    let name: Arc<str> = channel.into();
    while shards != 0 {
        let shard = shards.trailing_zeros() as usize;
        shards &= shards - 1;
        shared.send(
            shard,
            ShardMsg::Publish {
                channel: name.clone(),
                frame: frame.clone(),
                stamp,
            },
        );
    }
}

/// A direct message from a backend to every connection of `user` (`direct` without `from`).
pub fn send(shared: &Shared, user: &str, data: &RawValue) -> Result<(), OpError> {
    check_user(user)?;
    let frame = protocol::direct(data.get(), None);
    shared.send(
        shared.shard_of(user),
        ShardMsg::Direct {
            user: user.into(),
            frame,
        },
    );
    Ok(())
}

/// `broadcast` to every connection of this instance.
pub fn broadcast_all(shared: &Shared, data: &RawValue) {
    let frame = protocol::broadcast(data.get());
    for shard in 0..shared.shards() {
        shared.send(
            shard,
            ShardMsg::BroadcastAll {
                frame: frame.clone(),
            },
        );
    }
}

/// Closes every connection of `user` on this instance with 4004; answers how many.
pub async fn disconnect(
    shared: &Shared,
    user: &str,
    reason: &str,
    cause: Cause,
) -> Result<usize, OpError> {
    check_user(user)?;
    if reason.len() > 120 {
        return Err(OpError::BadRequest(
            "reason must be at most 120 bytes".into(),
        ));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    shared.send(
        shared.shard_of(user),
        ShardMsg::Disconnect {
            user: user.into(),
            reason: if reason.is_empty() {
                "disconnected"
            } else {
                reason
            }
            .into(),
            cause,
            reply: Some(tx),
        },
    );
    answer(rx).await
}

/// Sends a rule to every shard (each keeps a copy and closes what matches). Answers what
/// the shards did.
pub async fn revoke(shared: &Shared, rule: Arc<Rule>, cause: Cause) -> Result<Revoked, OpError> {
    let mut waits = Vec::with_capacity(shared.shards());
    for shard in 0..shared.shards() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        shared.send(
            shard,
            ShardMsg::Revoke {
                rule: rule.clone(),
                cause: cause.clone(),
                reply: Some(tx),
            },
        );
        waits.push(rx);
    }
    let mut total = Revoked::default();
    for part in gather(waits).await? {
        total.closed += part.closed;
        total.seen_exp = total.seen_exp.max(part.seen_exp);
    }
    Ok(total)
}

/// Hands a stored rule to every shard, without waiting (at start, from the store).
pub fn install_rule(shared: &Shared, rule: Rule) {
    let rule = Arc::new(rule);
    for shard in 0..shared.shards() {
        shared.send(
            shard,
            ShardMsg::Revoke {
                rule: rule.clone(),
                cause: None,
                reply: None,
            },
        );
    }
}

/// Server-side subscription of all of `user`'s connections; answers how many changed.
pub async fn subscription(
    shared: &Shared,
    user: &str,
    channel: &str,
    subscribe: bool,
    cause: Cause,
) -> Result<usize, OpError> {
    check_user(user)?;
    check_channel(channel)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    shared.send(
        shared.shard_of(user),
        ShardMsg::Subscription {
            user: user.into(),
            channel: channel.into(),
            subscribe,
            cause,
            reply: Some(tx),
        },
    );
    answer(rx).await
}

/// Who is in a channel, gathered from every shard.
pub async fn presence(shared: &Shared, channel: &str) -> Result<Vec<PresenceUser>, OpError> {
    check_channel(channel)?;
    let ns = shared.config.namespace(channel);
    if !(ns.presence || ns.join_leave) {
        return Err(OpError::BadRequest(
            "presence is not enabled on this channel".into(),
        ));
    }
    let channel: Arc<str> = channel.into();
    let mut waits = Vec::with_capacity(shared.shards());
    for shard in 0..shared.shards() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        shared.send(
            shard,
            ShardMsg::PresenceQuery {
                channel: channel.clone(),
                to: PartTo::Control(tx),
            },
        );
        waits.push(rx);
    }
    Ok(gather(waits).await?.into_iter().flatten().collect())
}

type Wait<T> = tokio::sync::oneshot::Receiver<T>;

/// Waits for one shard's answer.
async fn answer<T>(rx: Wait<T>) -> Result<T, OpError> {
    Ok(gather(vec![rx]).await?.pop().expect("one answer"))
}

/// Waits for every shard's answer, for at most `SHARD_TIMEOUT` in all.
async fn gather<T>(waits: Vec<Wait<T>>) -> Result<Vec<T>, OpError> {
    let all = async {
        let mut out = Vec::with_capacity(waits.len());
        for rx in waits {
            out.push(
                rx.await
                    .map_err(|_| OpError::Unavailable("the hub is stopping".into()))?,
            );
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
