//! Cluster-wide `join` / `leave`, each exactly once: which instances a user is present on,
//! per channel, is a Redis set (`<prefix>presence.<channel>.<user>`), changed atomically by a
//! script when a user's first connection on an instance joins (or its last leaves). The
//! instance that makes the set go from empty to one member announces `join`; the one that
//! empties it announces `leave`.
//!
//! Each instance also lists what it is present in (`<prefix>presence-of.<instance>`), so
//! that when an instance stops sending heartbeats, the instance that removes it from the
//! peers takes it out of every set and announces the leaves it owed.
//!
//! In a Redis Cluster the set and the index are in different slots, which one script may
//! not touch: the script changes the set alone (`SET_ONLY`) and the index is changed by a
//! command beside it. A crash between the two can leave an index entry without its set
//! member (its clean-up is then a no-op) or miss one (a set member left until the user's
//! next leave on that instance).

use std::sync::Arc;

use super::batch::Batch;
use super::cluster::Conn;
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

const SET_ONLY: &str = r"
if ARGV[2] == '1' then
  redis.call('SADD', KEYS[1], ARGV[1])
else
  redis.call('SREM', KEYS[1], ARGV[1])
end
return redis.call('SCARD', KEYS[1])
";

static CHANGE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(SCRIPT));
static CHANGE_SET: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(SET_ONLY));

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
    conn: &mut Conn,
    instance: &str,
    changes: &[Change],
) -> redis::RedisResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let prefix = &shared.config.redis_prefix;
    let index = index_key(prefix, instance);
    let mut batch = Batch::new(conn);
    let split = conn.is_cluster();
    batch.uses(if split { &CHANGE_SET } else { &CHANGE });
    for c in changes {
        let set = set_key(prefix, &c.channel, &c.user);
        let sign = if c.joined { "1" } else { "-1" };
        if split {
            batch.script(set.as_bytes(), CHANGE_SET.key(&set).arg(instance).arg(sign));
            let mut cmd = redis::cmd(if c.joined { "SADD" } else { "SREM" });
            cmd.arg(&index).arg(member(c));
            batch.cmd(index.as_bytes(), cmd, false);
        } else {
            batch.script(
                set.as_bytes(),
                CHANGE
                    .key(&set)
                    .key(&index)
                    .arg(instance)
                    .arg(member(c))
                    .arg(sign),
            );
        }
    }
    let mut failed = None;
    for (c, n) in changes.iter().zip(batch.run::<i64>(conn).await) {
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                failed.get_or_insert(e);
                continue;
            }
        };
        let announce = if c.joined { n == 1 } else { n == 0 };
        if announce {
            let kind = if c.joined { "join" } else { "leave" };
            let frame = protocol::join_leave(kind, &c.channel, &c.user, &c.info);
            crate::route::webhook_queue::presence(shared, c.joined, &c.channel, &c.user, &c.info);
            ops::publish_frame(shared, &c.channel, frame, None, ops::Scope::Cluster);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Takes a gone instance (or this one's previous life) out of every presence set.
pub async fn clean_up(shared: &Shared, conn: &mut Conn, instance: &str) -> redis::RedisResult<()> {
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
