//! Cluster-wide `join` / `leave`, each exactly once: which instances a user is present on,
//! per channel, is a Redis set (`<prefix>presence.<channel>.<user>`), changed atomically by a
//! script when a user's first connection on an instance joins (or its last leaves). The
//! instance that makes the set go from empty to one member announces `join`; the one that
//! empties it announces `leave`.
//!
//! Each instance also lists what it is present in (`<prefix>presence-of.<instance>`), so
//! that when an instance stops sending heartbeats, the instance that removes it from the
//! peers takes it out of every set and announces the leaves it owed.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;

use super::link::timed;
use crate::protocol;
use crate::route::ops;
use crate::shared::Shared;

/// KEYS: the channel-user set, the instance's index. ARGV: instance, index member, +1/-1.
/// Returns the instances left in the set.
const SCRIPT: &str = r"
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[2])
else
  redis.call('SREM', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
return redis.call('SCARD', KEYS[1])
";

static CHANGE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(SCRIPT));

/// One transition to apply.
pub struct Change {
    pub channel: Arc<str>,
    pub user: Arc<str>,
    pub info: Box<str>,
    pub joined: bool,
}

fn set_key(prefix: &str, channel: &str, user: &str) -> String {
    format!("{prefix}presence.{channel}.{user}")
}

fn index_key(prefix: &str, instance: &str) -> String {
    format!("{prefix}presence-of.{instance}")
}

fn member(c: &Change) -> String {
    serde_json::to_string(&(&*c.channel, &*c.user, &*c.info)).expect("strings serialize")
}

/// Applies transitions of `instance` (this one, or a dead one being cleaned up) in one
/// pipeline, and announces the cluster-wide joins and leaves.
pub async fn apply(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    instance: &str,
    changes: &[Change],
) -> redis::RedisResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let prefix = &shared.config.redis_prefix;
    let index = index_key(prefix, instance);
    let mut pipe = redis::pipe();
    // Loaded once per pipeline, then called by its digest.
    pipe.load_script(&CHANGE).ignore();
    for c in changes {
        pipe.invoke_script(
            CHANGE
                .key(set_key(prefix, &c.channel, &c.user))
                .key(&index)
                .arg(instance)
                .arg(member(c))
                .arg(if c.joined { "1" } else { "-1" }),
        );
    }
    let left: Vec<i64> = timed(pipe.query_async(conn)).await?;
    for (c, n) in changes.iter().zip(left) {
        let announce = if c.joined { n == 1 } else { n == 0 };
        if announce {
            let kind = if c.joined { "join" } else { "leave" };
            let frame = protocol::join_leave(kind, &c.channel, &c.user, &c.info);
            crate::route::webhook_queue::presence(shared, c.joined, &c.channel, &c.user, &c.info);
            ops::publish_frame(shared, &c.channel, frame, None, ops::Scope::Cluster);
        }
    }
    Ok(())
}

/// Takes a gone instance (or this one's previous life) out of every presence set.
pub async fn clean_up(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    instance: &str,
) -> redis::RedisResult<()> {
    let index = index_key(&shared.config.redis_prefix, instance);
    let members: Vec<String> = timed(redis::cmd("SMEMBERS").arg(&index).query_async(conn)).await?;
    let changes: Vec<Change> = members
        .iter()
        .filter_map(|m| serde_json::from_str::<(String, String, String)>(m).ok())
        .map(|(channel, user, info)| Change {
            channel: channel.into(),
            user: user.into(),
            info: info.into(),
            joined: false,
        })
        .collect();
    for chunk in changes.chunks(512) {
        apply(shared, conn, instance, chunk).await?;
    }
    timed(redis::cmd("DEL").arg(&index).query_async::<()>(conn)).await?;
    if !changes.is_empty() {
        tracing::info!(
            instance,
            entries = changes.len(),
            "presence: cleaned up after a gone instance"
        );
    }
    Ok(())
}
