//! Mutes through the server API and the relay: a mute goes to its user's shard (where
//! every connection of the user is), and to the other instances.

use std::sync::Arc;

use super::{answer, ask_every_shard, relay, OpError, Scope};
use crate::mutes::Mute;
use crate::protocol::envelope::Kind;
use crate::route::inbox::{Cause, ShardMsg};
use crate::route::relay_queue::Topic;
use crate::shared::Shared;

/// Mutes `mute.user` (replacing a mute of the same scope).
pub fn mute(shared: &Shared, mute: Mute, cause: &Cause, scope: Scope) {
    if scope == Scope::Cluster {
        let json = serde_json::to_vec(&mute).expect("mutes serialize");
        relay(shared, scope, Topic::Cluster, Kind::Mute, cause, "", &json);
    }
    let shard = shared.shard_of(&mute.user);
    shared.send(shard, ShardMsg::Mute(Box::new(mute)));
}

/// Lifts `user`'s mute of `what` (`Mute::scope`); answers whether this instance had it.
pub async fn unmute(
    shared: &Shared,
    user: &str,
    what: &str,
    cause: &Cause,
    scope: Scope,
) -> Result<bool, OpError> {
    relay(
        shared,
        scope,
        Topic::Cluster,
        Kind::Unmute,
        cause,
        user,
        what.as_bytes(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    let msg = ShardMsg::Unmute {
        user: Arc::from(user),
        scope: what.to_string(),
        reply: Some(tx),
    };
    shared.send(shared.shard_of(user), msg);
    answer(rx).await
}

/// Lifts a mute without waiting (from the relay).
pub fn unmute_nowait(shared: &Shared, user: &str, what: &str) {
    let msg = ShardMsg::Unmute {
        user: Arc::from(user),
        scope: what.to_string(),
        reply: None,
    };
    shared.send(shared.shard_of(user), msg);
}

/// Every mute in force on this instance.
pub async fn mutes(shared: &Shared) -> Result<Vec<Mute>, OpError> {
    let parts = ask_every_shard(shared, |reply| ShardMsg::Mutes { reply }).await?;
    Ok(parts.into_iter().flatten().collect())
}
