//! Publishing: relay messages and ingress entries go out as one pipeline per batch; the
//! heartbeat keeps this instance in `<prefix>instances` and reads the others.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::batch::Batch;
use super::cluster::{self, Conn};
use super::link::timed;
use super::{history, members, traced};
use crate::route::inbox::ShardMsg;
use crate::route::relay_queue::{answer_unavailable, Append, IngressAck, Out, Peer, Topic};
use crate::shared::Shared;
use crate::telemetry::KeyValue;

/// An instance missing heartbeats this long is no longer a peer (and is removed).
const PEER_EXPIRY_MS: u64 = 10_000;

/// Publishes a batch in one pipeline (one per slot in a cluster); on failure the batch is
/// lost (counted) and the link reconnects (with one Redis: in a cluster, only the failed
/// slots' part is lost, and the crate finds their new masters).
pub async fn publish(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    batch: &mut Vec<Out>,
    deferred: &mut Vec<Out>,
) -> redis::RedisResult<()> {
    let handle = shared.relay.as_ref().expect("relay configured");
    let prefix = &shared.config.redis_prefix;
    let stream = format!("{prefix}ingress.v1");
    let maxlen = shared.config.ingress_maxlen;
    let dead = format!("{prefix}webhooks-dead");
    let dead_maxlen = shared.config.webhook_dead_maxlen;
    let mut pipe = Batch::new(conn);
    let sharded = conn.is_cluster();
    let mut acks: Vec<IngressAck> = Vec::new();
    let mut changes: Vec<members::Change> = Vec::new();
    let mut appends: Vec<Append> = Vec::new();
    let mut sent = 0u64;
    let mut ingress = 0u64;
    // Filled only by publications that carried a client's traceparent (traces on).
    let mut parents = Vec::new();
    for out in batch.drain(..) {
        match out {
            Out::Envelope {
                topic,
                bytes,
                parent,
            } => {
                parents.extend(parent);
                // Channels are shard channels in a cluster; the rest reach every node.
                let (name, verb) = match topic {
                    Topic::Channel(ch) if sharded => {
                        (cluster::topic(&shared.config, &ch), "SPUBLISH")
                    }
                    Topic::Channel(ch) => (cluster::topic(&shared.config, &ch), "PUBLISH"),
                    Topic::Cluster => (format!("{prefix}cluster"), "PUBLISH"),
                    Topic::Reply(instance) => (format!("{prefix}reply.{instance}"), "PUBLISH"),
                };
                let mut cmd = redis::cmd(verb);
                cmd.arg(&name).arg(&bytes[..]);
                pipe.cmd(name.as_bytes(), cmd, false);
                sent += 1;
            }
            Out::Ingress { fields, ack } => {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&stream);
                if maxlen > 0 {
                    cmd.arg("MAXLEN").arg("~").arg(maxlen);
                }
                cmd.arg("*");
                for (k, v) in &fields {
                    cmd.arg(*k).arg(v);
                }
                pipe.cmd(stream.as_bytes(), cmd, false);
                ingress += 1;
                acks.extend(ack);
            }
            Out::DeadLetter { fields } => {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&dead);
                if dead_maxlen > 0 {
                    cmd.arg("MAXLEN").arg("~").arg(dead_maxlen);
                }
                cmd.arg("*");
                for (k, v) in &fields {
                    cmd.arg(*k).arg(v);
                }
                pipe.cmd(dead.as_bytes(), cmd, false);
                sent += 1;
            }
            Out::Sequence(a) => appends.push(a),
            out @ (Out::Recover { .. } | Out::History { .. }) => deferred.push(out),
            Out::Transition {
                channel,
                user,
                info,
                joined,
            } => changes.push(members::Change {
                channel,
                user,
                info,
                joined,
            }),
            Out::Presence {
                channel,
                shard,
                query,
            } => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let users = crate::route::ops::remote_presence(&shared, &channel).await;
                    shared.send(shard, ShardMsg::PresencePart { query, users });
                });
            }
        }
    }
    // Transitions first: their joins and leaves are queued for the next batch. A failure
    // here still answers every ingress request of the batch (as failed) below.
    let instance = shared.instance.clone();
    let mut result = members::apply(shared, conn, &instance, &changes).await;
    if result.is_ok() {
        result = history::append(shared, conn, appends).await;
    } else {
        for a in appends {
            answer_unavailable(shared, Out::Sequence(a));
        }
    }
    if result.is_ok() && !pipe.is_empty() {
        let span = shared.traces.as_ref().and_then(|_| {
            let attributes = vec![
                KeyValue::new("ringhub.relay.published", sent as i64),
                KeyValue::new("ringhub.relay.ingress", ingress as i64),
            ];
            traced::start(shared, "relay publish", &parents, attributes)
        });
        result = pipe.exec(conn).await;
        traced::end(span, &result);
    }
    let ok = result.is_ok();
    let stats = &handle.stats;
    if ok {
        stats.published.fetch_add(sent, Ordering::Relaxed);
        stats.ingress.fetch_add(ingress, Ordering::Relaxed);
    } else {
        stats.publish_failures.fetch_add(sent, Ordering::Relaxed);
        stats.ingress_failures.fetch_add(ingress, Ordering::Relaxed);
    }
    for ack in acks {
        answer(shared, ack, ok);
    }
    match result {
        Err(e) if sharded => {
            tracing::warn!(error = %e, "relay: publishing failed on part of the cluster");
            Ok(())
        }
        result => result,
    }
}

fn answer(shared: &Shared, ack: IngressAck, ok: bool) {
    shared.send(
        ack.shard,
        ShardMsg::IngressDone {
            key: ack.key,
            conn: ack.conn,
            id: ack.id,
            ok,
        },
    );
}

/// Writes this instance's heartbeat and reads the others'.
pub async fn heartbeat(shared: &Shared, conn: &mut Conn) -> redis::RedisResult<()> {
    let handle = shared.relay.as_ref().expect("relay configured");
    let key = format!("{}instances", shared.config.redis_prefix);
    let now = crate::auth::unix_ms();
    let me = Peer {
        instance: shared.instance.clone(),
        shards: shared.shards(),
        connections: shared.connections.load(Ordering::Relaxed),
        ts: now,
    };
    let value = serde_json::to_string(&me).expect("peers serialize");
    // HSET's answer is ignored: the pipeline answers HGETALL alone.
    let (all,): (Vec<(String, String)>,) = timed(
        redis::pipe()
            .cmd("HSET")
            .arg(&key)
            .arg(&me.instance)
            .arg(value)
            .ignore()
            .cmd("HGETALL")
            .arg(&key)
            .query_async(conn),
    )
    .await?;
    let mut peers = Vec::new();
    let mut stale = Vec::new();
    for (name, value) in all {
        match serde_json::from_str::<Peer>(&value) {
            Ok(p) if p.ts + PEER_EXPIRY_MS < now => stale.push(name),
            Ok(p) if p.instance != shared.instance => peers.push(p),
            Ok(_) => {}
            Err(_) => stale.push(name),
        }
    }
    for name in stale {
        // Whoever removes a gone instance cleans up its presence (exactly one does).
        let removed: i64 = timed(redis::cmd("HDEL").arg(&key).arg(&name).query_async(conn)).await?;
        if removed == 1 {
            members::clean_up(shared, conn, &name).await?;
        }
    }
    peers.sort_by(|a, b| a.instance.cmp(&b.instance));
    *handle.peers.lock().unwrap_or_else(|e| e.into_inner()) = peers;
    Ok(())
}
