//! The relay's subscriptions, with one Redis (`SUBSCRIBE` on a pub/sub connection) or a
//! Redis Cluster (`SSUBSCRIBE` per slot on a RESP3 cluster connection).
//!
//! In a cluster, a channel's topic is a shard channel: `SPUBLISH` sends it to the nodes of
//! its slot only, and the instance `SSUBSCRIBE`s it at the slot's master, in one command
//! per slot (a command's channels must share a slot). The fixed topics (`cluster`,
//! `reply.<instance>`, `egress`, `egress.<instance>`) stay classic: Redis Cluster relays
//! classic publications to every node, so one subscription on any node hears them from
//! wherever they are published.
//!
//! The `redis` crate (1.8, `cluster-async`) tracks the subscriptions it was asked for and,
//! after a node's connection drops or the slot map changes (a failover, a migration),
//! subscribes them again at the slots' new owners. It does not forget a channel when the
//! server ends the subscription itself (`SUNSUBSCRIBE` pushed when a slot moves away): the
//! relay then asks again ([`Incoming::Dropped`]), which also makes the crate find the new
//! owner through `MOVED`.

use futures_util::StreamExt;
use redis::cluster_routing::Slot;
use redis::{PushInfo, PushKind, RedisResult};
use std::collections::HashMap;

use super::cluster::Target;
use super::link::timed;

/// What arrives on the subscriptions.
pub enum Incoming {
    Msg(redis::Msg),
    /// The server ended a shard channel's subscription (cluster only).
    Dropped(String),
    /// A node's connection dropped; the crate reconnects and subscribes again (cluster).
    Disconnected,
    /// A subscription was confirmed (cluster): after `Disconnected`, it is back.
    Confirmed,
}

pub enum Sink {
    Single(redis::aio::PubSubSink),
    Cluster(redis::cluster_async::ClusterConnection),
}

pub enum Stream {
    Single(redis::aio::PubSubStream),
    Cluster(tokio::sync::mpsc::UnboundedReceiver<PushInfo>),
}

/// Opens the subscription side.
pub async fn open(target: &Target) -> RedisResult<(Sink, Stream)> {
    match target {
        Target::Single(client) => {
            let (sink, stream) = timed(client.get_async_pubsub()).await?.split();
            Ok((Sink::Single(sink), Stream::Single(stream)))
        }
        Target::Cluster(_, nodes) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let client = super::cluster::builder(nodes)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(tx)
                .build()?;
            let conn = timed(client.get_async_connection()).await?;
            Ok((Sink::Cluster(conn), Stream::Cluster(rx)))
        }
    }
}

impl Sink {
    /// Subscribes to topics every instance hears (classic pub/sub in both modes).
    pub async fn fixed(&mut self, topics: &[String]) -> RedisResult<()> {
        match self {
            Sink::Single(s) => timed(s.subscribe(topics)).await,
            Sink::Cluster(c) => timed(c.subscribe(topics)).await,
        }
    }

    /// Subscribes to channel topics.
    pub async fn join(&mut self, topics: &[String]) -> RedisResult<()> {
        match self {
            Sink::Single(s) => timed(s.subscribe(topics)).await,
            Sink::Cluster(c) => {
                let runs = by_slot(topics).into_values().map(|group| {
                    let mut c = c.clone();
                    async move { timed(c.ssubscribe(group)).await }
                });
                futures_util::future::join_all(runs)
                    .await
                    .into_iter()
                    .collect()
            }
        }
    }

    /// Ends channel topics' subscriptions.
    pub async fn leave(&mut self, topics: &[String]) -> RedisResult<()> {
        match self {
            Sink::Single(s) => timed(s.unsubscribe(topics)).await,
            Sink::Cluster(c) => {
                let runs = by_slot(topics).into_values().map(|group| {
                    let mut c = c.clone();
                    async move { timed(c.sunsubscribe(group)).await }
                });
                futures_util::future::join_all(runs)
                    .await
                    .into_iter()
                    .collect()
            }
        }
    }
}

fn by_slot(topics: &[String]) -> HashMap<Slot, Vec<&str>> {
    let mut groups: HashMap<Slot, Vec<&str>> = HashMap::new();
    for t in topics {
        groups.entry(Slot::for_key(t)).or_default().push(t);
    }
    groups
}

impl Stream {
    /// The next event; `None` when the connection is gone for good.
    pub async fn next(&mut self) -> Option<Incoming> {
        match self {
            Stream::Single(s) => s.next().await.map(Incoming::Msg),
            Stream::Cluster(rx) => loop {
                let push = rx.recv().await?;
                match push.kind {
                    PushKind::Message | PushKind::SMessage => {
                        if let Some(msg) = redis::Msg::from_push_info(push) {
                            return Some(Incoming::Msg(msg));
                        }
                    }
                    PushKind::SUnsubscribe => {
                        let topic = push.data.first().and_then(|v| match v {
                            redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
                            _ => None,
                        });
                        if let Some(topic) = topic {
                            return Some(Incoming::Dropped(topic));
                        }
                    }
                    PushKind::Disconnection => return Some(Incoming::Disconnected),
                    PushKind::Subscribe | PushKind::SSubscribe => return Some(Incoming::Confirmed),
                    _ => {}
                }
            },
        }
    }
}
