//! Operations on users and their connections: disconnect, revoke, server-side
//! subscriptions, presence. Each reaches the user's shard (or every shard) and, with
//! `Scope::Cluster`, the other instances.

use std::sync::Arc;

use super::{answer, ask_every_shard, check_channel, check_user, relay, OpError, Scope};
use crate::protocol::envelope::Kind;
use crate::protocol::PresenceUser;
use crate::revocation::Rule;
use crate::route::inbox::{Cause, PartTo, Revoked, ShardMsg};
use crate::route::relay_queue::Topic;
use crate::shared::Shared;

/// Closes every connection of `user` with 4004 (on every instance with `Scope::Cluster`);
/// answers how many on this instance.
pub async fn disconnect(
    shared: &Shared,
    user: &str,
    reason: &str,
    cause: Cause,
    scope: Scope,
) -> Result<usize, OpError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    disconnect_with(shared, user, reason, cause, scope, Some(tx))?;
    answer(rx).await
}

/// `disconnect` without waiting for the count.
pub fn disconnect_nowait(
    shared: &Shared,
    user: &str,
    reason: &str,
    cause: Cause,
    scope: Scope,
) -> Result<(), OpError> {
    disconnect_with(shared, user, reason, cause, scope, None)
}

fn disconnect_with(
    shared: &Shared,
    user: &str,
    reason: &str,
    cause: Cause,
    scope: Scope,
    reply: Option<crate::route::inbox::Reply<usize>>,
) -> Result<(), OpError> {
    check_user(user)?;
    if reason.len() > 120 {
        return Err(OpError::BadRequest(
            "reason must be at most 120 bytes".into(),
        ));
    }
    let reason = if reason.is_empty() {
        "disconnected"
    } else {
        reason
    };
    relay(
        shared,
        scope,
        Topic::Cluster,
        Kind::Disconnect,
        &cause,
        user,
        reason.as_bytes(),
    );
    shared.send(
        shared.shard_of(user),
        ShardMsg::Disconnect {
            user: user.into(),
            reason: reason.into(),
            cause,
            reply,
        },
    );
    Ok(())
}

/// Sends a rule to every shard (each keeps a copy and closes what matches). Answers what
/// the shards did.
pub async fn revoke(shared: &Shared, rule: Arc<Rule>, cause: Cause) -> Result<Revoked, OpError> {
    let json = serde_json::to_vec(&*rule).expect("rules serialize");
    relay(
        shared,
        Scope::Cluster,
        Topic::Cluster,
        Kind::Revoke,
        &cause,
        "",
        &json,
    );
    let parts = ask_every_shard(shared, |tx| ShardMsg::Revoke {
        rule: rule.clone(),
        cause: cause.clone(),
        reply: Some(tx),
    });
    let mut total = Revoked::default();
    for part in parts.await? {
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
    let kind = if subscribe {
        Kind::Subscribe
    } else {
        Kind::Unsubscribe
    };
    relay(
        shared,
        Scope::Cluster,
        Topic::Cluster,
        kind,
        &cause,
        user,
        channel.as_bytes(),
    );
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
pub async fn presence(shared: &Arc<Shared>, channel: &str) -> Result<Vec<PresenceUser>, OpError> {
    let mut users = local_presence(shared, channel).await?;
    users.extend(remote_presence(shared, channel).await);
    Ok(crate::protocol::merge_presence(users))
}

/// How long the other instances have to answer (below the shards' 2 s gather timeout).
pub const REMOTE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1200);

/// The other instances' parts of a channel's presence (empty without peers or Redis): the
/// query goes out on `cluster` through the relay queue; the relay hands each answer to
/// `queries`. An instance that died a moment ago is still listed as a peer for a few
/// seconds; its part is then missing, and logged.
pub async fn remote_presence(shared: &Shared, channel: &str) -> Vec<PresenceUser> {
    let Some(relay) = shared.relay.as_ref() else {
        return Vec::new();
    };
    let expected = relay.peers.lock().unwrap_or_else(|e| e.into_inner()).len();
    if expected == 0 || !relay.is_up() {
        return Vec::new();
    }
    let (query, done) = relay.queries.start(expected);
    let id = query.to_string();
    relay.send(
        &shared.instance,
        Topic::Cluster,
        Kind::PresenceQuery,
        None,
        channel,
        id.as_bytes(),
    );
    let _ = tokio::time::timeout(REMOTE_TIMEOUT, done).await;
    let Some(w) = relay.queries.finish(query) else {
        return Vec::new();
    };
    if w.answered < w.expected {
        let (answered, expected) = (w.answered, w.expected);
        tracing::info!(
            channel,
            answered,
            expected,
            "presence: not every instance answered in time"
        );
    }
    w.users
}

/// Who is in a channel on this instance.
pub async fn local_presence(shared: &Shared, channel: &str) -> Result<Vec<PresenceUser>, OpError> {
    check_channel(channel)?;
    let ns = shared.config.namespace(channel);
    if !(ns.presence || ns.join_leave) {
        return Err(OpError::BadRequest(
            "presence is not enabled on this channel".into(),
        ));
    }
    let channel: Arc<str> = channel.into();
    let parts = ask_every_shard(shared, |tx| ShardMsg::PresenceQuery {
        channel: channel.clone(),
        to: PartTo::Control(tx),
    });
    Ok(parts.await?.into_iter().flatten().collect())
}
