//! Where the relay's Redis is: one server (`redis_url`) or a Redis Cluster
//! (`redis_cluster`), behind one connection type, [`Conn`], that the rest of the relay
//! and the control plane's store use alike.
//!
//! What differs in a cluster, and is decided here only:
//!
//! - **Names.** A channel's topic and history keys carry the channel as a hash tag
//!   (`ch.{table:1}`, `history.{table:1}`, `history-meta.{table:1}`), so they share one slot:
//!   the sequencing script touches only keys of its node and may `SPUBLISH` the topic.
//!   With one Redis the names stay untagged, as deployments have them.
//! - **Batches.** A pipeline must stay within one slot in a cluster (`batch::Batch`).

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::link::timed;
use crate::config::Config;

/// The scheme of a URL naming several seed nodes at once.
const CLUSTER_SCHEME: &str = "redis+cluster://";

/// How to reach the relay's Redis.
#[derive(Clone)]
pub enum Target {
    Single(Box<redis::Client>),
    Cluster(Box<redis::cluster::ClusterClient>, Vec<String>),
}

impl Target {
    /// From `redis_url` or `redis_cluster`; `None` when neither is set.
    /// One Redis is reached through `config::redis_client` (TLS, ACL users); the error
    /// names what is wrong without quoting a password.
    pub fn from_config(config: &Config) -> Option<Result<Target, String>> {
        if !config.redis_cluster.is_empty() {
            let nodes = seed_nodes(&config.redis_cluster);
            return Some(
                builder(&nodes)
                    .build()
                    .map(|c| Target::Cluster(Box::new(c), nodes))
                    .map_err(|e| format!("redis_cluster: {e}")),
            );
        }
        config.redis_url.as_deref()?;
        Some(crate::config::redis_client(config).map(|c| Target::Single(Box::new(c))))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(..))
    }

    /// A connection for commands (multiplexed: clones share it).
    pub async fn connect(&self) -> RedisResult<Conn> {
        match self {
            Target::Single(c) => Ok(Conn::Single(
                timed(c.get_multiplexed_async_connection()).await?,
            )),
            Target::Cluster(c, _) => Ok(Conn::Cluster(timed(c.get_async_connection()).await?)),
        }
    }
}

/// The cluster client's settings. The crate's default retries (16, each after at least
/// 1.28 s) would hold a batch for its whole timeout while a slot's master is down, and the
/// relay's other slots with it; three quick retries are enough for `MOVED` and `ASK`
/// (retried at once) and fail a dead slot's commands within a few hundred milliseconds.
pub fn builder(nodes: &[String]) -> redis::cluster::ClusterClientBuilder {
    redis::cluster::ClusterClient::builder(nodes.to_vec())
        .retries(3)
        .min_retry_wait(10)
        .max_retry_wait(100)
        .connection_timeout(std::time::Duration::from_millis(500))
        .response_timeout(super::link::TIMEOUT)
}

/// `redis_cluster`'s entries as node URLs: `redis://h:p`, bare `h:p`, or
/// `redis+cluster://h:p,h:p` (which the environment's comma splitting may have cut apart:
/// the pieces are bare `h:p` then).
pub fn seed_nodes(entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .flat_map(|e| {
            let e = e.trim();
            match e.strip_prefix(CLUSTER_SCHEME) {
                Some(list) => list.split(',').map(str::to_string).collect(),
                None => vec![e.to_string()],
            }
        })
        .map(|n| n.trim().trim_end_matches('/').to_string())
        .filter(|n| !n.is_empty())
        .map(|n| {
            if n.contains("://") {
                n
            } else {
                format!("redis://{n}")
            }
        })
        .collect()
}

/// The topic of a channel's publications.
pub fn topic(config: &Config, channel: &str) -> String {
    let p = &config.redis_prefix;
    if config.redis_cluster.is_empty() {
        format!("{p}ch.{channel}")
    } else {
        format!("{p}ch.{{{channel}}}")
    }
}

/// The channel a topic of [`topic`] names.
pub fn channel_of<'a>(config: &Config, topic: &'a str) -> Option<&'a str> {
    let rest = topic.strip_prefix(config.redis_prefix.as_str())?;
    let rest = rest.strip_prefix("ch.")?;
    if config.redis_cluster.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix('{')?.strip_suffix('}')
    }
}

/// A channel's history stream and meta hash.
pub fn history_keys(config: &Config, channel: &str) -> (String, String) {
    let p = &config.redis_prefix;
    if config.redis_cluster.is_empty() {
        (
            format!("{p}history.{channel}"),
            format!("{p}history-meta.{channel}"),
        )
    } else {
        (
            format!("{p}history.{{{channel}}}"),
            format!("{p}history-meta.{{{channel}}}"),
        )
    }
}

/// Which master serves which slots (`CLUSTER SLOTS`: start, end, host, port), sorted; empty
/// with one Redis. The relay compares it from one heartbeat to the next after a node's
/// connection dropped: a change is a failover, and the subscriptions move (`sharded`).
pub async fn masters(conn: &mut Conn) -> RedisResult<Vec<(i64, i64, String, i64)>> {
    if !conn.is_cluster() {
        return Ok(Vec::new());
    }
    let slots: Vec<Value> = timed(redis::cmd("CLUSTER").arg("SLOTS").query_async(conn)).await?;
    let mut out = Vec::new();
    for range in slots {
        let Value::Array(parts) = range else { continue };
        let (Some(Value::Int(a)), Some(Value::Int(b)), Some(Value::Array(master))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            continue;
        };
        let host = match master.first() {
            Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
            _ => String::new(),
        };
        let port = match master.get(1) {
            Some(Value::Int(p)) => *p,
            _ => 0,
        };
        out.push((*a, *b, host, port));
    }
    out.sort();
    Ok(out)
}

/// A connection to one Redis or to a cluster.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    #[test]
    fn seed_nodes_read_every_form() {
        let entries = vec![
            "redis+cluster://a:1,b:2".to_string(),
            "c:3".to_string(),
            "redis://d:4/".to_string(),
        ];
        assert_eq!(
            seed_nodes(&entries),
            ["redis://a:1", "redis://b:2", "redis://c:3", "redis://d:4"]
        );
    }

    #[test]
    fn a_channels_names_share_a_slot_in_a_cluster() {
        let config = Config {
            redis_cluster: vec!["a:1".into()],
            ..Config::default()
        };
        for channel in ["table:1", "a}b", "{x}", "room"] {
            let (stream, meta) = history_keys(&config, channel);
            let topic = topic(&config, channel);
            assert_eq!(Slot::for_key(&stream), Slot::for_key(&meta), "{channel}");
            assert_eq!(Slot::for_key(&stream), Slot::for_key(&topic), "{channel}");
            assert_eq!(channel_of(&config, &topic), Some(channel));
        }
    }
}
