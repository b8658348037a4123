//! History with Redis: the sequencer of a channel is Redis itself. One script appends a
//! publication to the channel's stream `<prefix>history.<channel>` (trimmed exactly by
//! `history_size` and by `history_ttl`), takes the next offset from
//! `<prefix>history-meta.<channel>`, and publishes the final message on `ch.<channel>` —
//! all in one atomic step, so offsets are unique and ordered cluster-wide and every
//! instance (the publisher's too) delivers from the same stream of publications.
//!
//! In a Redis Cluster the three names carry `{<channel>}` as a hash tag, so they share a
//! slot, and the script publishes with `SPUBLISH` (its verb is the script's last argument).
//!
//! The epoch lives in the meta hash: made when a channel first gets history, and made anew
//! when the stream has disappeared while the meta remained (deleted by hand, or the data
//! lost), so clients can tell their offsets no longer apply. With `history_ttl` both keys
//! expire after that long without publications, and history restarts with a new epoch.

use std::sync::{Arc, LazyLock};

use super::batch::Batch;
use super::cluster::{self, Conn};
use super::link::timed;
use super::traced;
use crate::protocol::{self, Publication, Since};
use crate::route::inbox::{AckTo, ConnRef, HistoryAnswer, HistoryTo, RecoverTo, ShardMsg};
use crate::route::relay_queue::{answer_unavailable, Append, Out};
use crate::shared::Shared;
use crate::telemetry::{KeyValue, Span};
use bytes::Bytes;

/// The epoch of the channel, made when missing or when the stream is gone (a Lua snippet
/// shared by both scripts). KEYS[1] stream, KEYS[2] meta; sets `epoch` and `now`.
const EPOCH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if (not epoch) or (redis.call('EXISTS', KEYS[1]) == 0 and redis.call('HEXISTS', KEYS[2], 'top') == 1) then
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
";

/// ARGV: size, ttl ms (0: none), the message JSON up to its closing brace, topic,
/// channel, from, data. Returns {offset, epoch}.
const APPEND: &str = r#"
local top = redis.call('HINCRBY', KEYS[2], 'top', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'o', top, 'f', ARGV[6], 'd', ARGV[7])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', now - ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local json = ARGV[3] .. ',"offset":' .. top .. '}'
local target = ARGV[5]
local env = 'RH1m' .. string.char(0) .. string.char(0) .. string.char(math.floor(#target / 256), #target % 256) .. target .. json
redis.call(ARGV[8], ARGV[4], env)
return {top, epoch}
"#;

/// ARGV: ttl ms (0: none), since (an offset; the entries after it are read, newest first:
/// offsets are dense, so that is the last `top - since` entries). Returns {epoch, top,
/// entries}.
const READ: &str = r"
local top = tonumber(redis.call('HGET', KEYS[2], 'top') or '0')
local ttl = tonumber(ARGV[1])
local oldest = '-'
if ttl > 0 then oldest = tostring(now - ttl) end
local n = top - tonumber(ARGV[2])
if n <= 0 then return {epoch, top, {}} end
return {epoch, top, redis.call('XREVRANGE', KEYS[1], '+', oldest, 'COUNT', n)}
";

/// The scripts, loaded once per pipeline (`SCRIPT LOAD`) and then called by their digest:
/// the script text does not travel with every publication.
static APPEND_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{EPOCH}{APPEND}")));
static READ_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{EPOCH}{READ}")));

/// In a cluster the names carry `{channel}` as a hash tag (`cluster::history_keys`).
fn keys(shared: &Shared, channel: &str) -> (String, String) {
    cluster::history_keys(&shared.config, channel)
}

fn ttl_ms(shared: &Shared, channel: &str) -> u64 {
    shared
        .config
        .namespace(channel)
        .history_ttl
        .map_or(0, |d| d.as_millis().max(1) as u64)
}

/// Sequences a batch of publications in one pipeline and tells each publisher its offset.
pub async fn append(
    shared: &Shared,
    conn: &mut Conn,
    batch: Vec<Append>,
) -> redis::RedisResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let span = shared.traces.as_ref().and_then(|_| {
        let attributes = vec![KeyValue::new("ringhub.relay.sequenced", batch.len() as i64)];
        traced::start(shared, "relay sequence", &[], attributes)
    });
    let mut pipe = Batch::new(conn);
    pipe.uses(&APPEND_SCRIPT);
    // In a cluster the topic is a shard channel, in the stream's slot.
    let publish = if conn.is_cluster() {
        "SPUBLISH"
    } else {
        "PUBLISH"
    };
    for a in &batch {
        let (stream, meta) = keys(shared, &a.channel);
        let frame = protocol::message(&a.channel, &a.data, a.from.as_deref());
        let json = crate::ws::frame::payload_of(&frame);
        let head = &json[..json.len() - 1];
        let size = shared.config.namespace(&a.channel).history_size;
        pipe.script(
            stream.as_bytes(),
            APPEND_SCRIPT
                .key(&stream)
                .key(meta)
                .arg(size)
                .arg(ttl_ms(shared, &a.channel))
                .arg(head)
                .arg(cluster::topic(&shared.config, &a.channel))
                .arg(&*a.channel)
                .arg(a.from.as_deref().unwrap_or(""))
                .arg(&*a.data)
                .arg(publish),
        );
    }
    // With one Redis the answers fail or succeed together; in a cluster per slot, and
    // a failed slot's appends are answered `unavailable` without ending the link.
    let sharded = conn.is_cluster();
    let answers = pipe.run::<(u64, String)>(conn).await;
    traced::end_all(span, &answers);
    let mut failed = None;
    for (a, answer) in batch.into_iter().zip(answers) {
        let offset = match answer {
            Ok((offset, _epoch)) => offset,
            Err(e) => {
                failed.get_or_insert(e);
                answer_unavailable(shared, Out::Sequence(a));
                continue;
            }
        };
        match a.ack {
            Some(AckTo::Conn(to)) => send_to(shared, to, protocol::ack_offset(to.id, offset)),
            Some(AckTo::Control(tx)) => {
                let _ = tx.send(offset);
            }
            None => {}
        }
    }
    match failed {
        Some(e) if !sharded => Err(e),
        Some(e) => {
            tracing::warn!(error = %e, "history: appending failed on part of the cluster");
            Ok(())
        }
        None => Ok(()),
    }
}

fn send_to(shared: &Shared, to: ConnRef, frame: Bytes) {
    let _ = crate::route::to_conn(shared, None, to, frame);
}

struct Entry {
    offset: u64,
    ts: u64,
    from: String,
    data: String,
}

/// The channel's epoch, top offset and kept publications after `since`, oldest first.
async fn read(
    shared: &Shared,
    conn: &mut Conn,
    channel: &str,
    since: u64,
) -> redis::RedisResult<(String, u64, Vec<Entry>)> {
    let (stream, meta) = keys(shared, channel);
    type Raw = (String, u64, Vec<(String, Vec<(String, String)>)>);
    let (epoch, top, raw): Raw = timed(
        READ_SCRIPT
            .key(stream)
            .key(meta)
            .arg(ttl_ms(shared, channel))
            .arg(since)
            .invoke_async(conn),
    )
    .await?;
    let mut entries: Vec<Entry> = raw
        .into_iter()
        .filter_map(|(id, fields)| {
            let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
            Some(Entry {
                offset: get("o")?.parse().ok()?,
                ts: id.split('-').next()?.parse().ok()?,
                from: get("f").unwrap_or_default(),
                data: get("d")?,
            })
        })
        .collect();
    entries.reverse();
    Ok((epoch, top, entries))
}

/// A stream read's span (traces on).
fn read_span(shared: &Shared, name: &'static str, channel: &str) -> Option<Span> {
    shared.traces.as_ref()?;
    let attributes = vec![KeyValue::new("ringhub.channel", channel.to_owned())];
    traced::start(shared, name, &[], attributes)
}

/// Where a subscription stands and what it missed; answered to its shard.
pub async fn recover(
    shared: &Shared,
    conn: &mut Conn,
    channel: Arc<str>,
    since: Option<Since>,
    to: RecoverTo,
) -> redis::RedisResult<()> {
    // Without `since` only the position is needed: read nothing after the top.
    let after = since.as_ref().map_or(i64::MAX as u64, |s| s.offset());
    let span = read_span(shared, "relay recover", &channel);
    let read = read(shared, conn, &channel, after).await;
    traced::end(span, &read);
    let (epoch, top, entries) = match read {
        Ok(read) => read,
        Err(e) => {
            answer_unavailable(shared, Out::Recover { channel, since, to });
            return Err(e);
        }
    };
    let (recovered, frames) = match since {
        None => (None, Vec::new()),
        Some(s) => {
            let first = entries.first().map_or(top + 1, |e| e.offset);
            if s.epoch() == Some(&epoch) && s.offset() <= top && s.offset() + 1 >= first {
                let frames = entries
                    .iter()
                    .filter(|e| e.offset > s.offset())
                    .map(|e| {
                        let from = (!e.from.is_empty()).then_some(&*e.from);
                        let frame = protocol::message_at(&channel, &e.data, from, e.offset);
                        (e.offset, frame)
                    })
                    .collect();
                (Some(true), frames)
            } else {
                (Some(false), Vec::new())
            }
        }
    };
    let msg = ShardMsg::Recovered {
        to,
        channel,
        epoch: epoch.into(),
        top,
        recovered,
        frames,
    };
    let _ = crate::route::answer(shared, None, to, msg);
    Ok(())
}

/// Stored publications after `since`, at most `limit`.
pub async fn history(
    shared: &Shared,
    conn: &mut Conn,
    channel: Arc<str>,
    since: Option<u64>,
    limit: usize,
    to: HistoryTo,
) -> redis::RedisResult<()> {
    let after = since.unwrap_or(0);
    let span = read_span(shared, "relay history", &channel);
    let read = read(shared, conn, &channel, after).await;
    traced::end(span, &read);
    let (epoch, _, entries) = match read {
        Ok(read) => read,
        Err(e) => {
            let out = Out::History {
                channel,
                since,
                limit,
                to,
            };
            answer_unavailable(shared, out);
            return Err(e);
        }
    };
    let publications =
        protocol::publications_json(entries.iter().filter(|e| e.offset > after).take(limit).map(
            |e| Publication {
                offset: e.offset,
                from: (!e.from.is_empty()).then_some(&*e.from),
                ts: e.ts,
                data: &e.data,
            },
        ));
    match to {
        HistoryTo::Conn(to) => send_to(
            shared,
            to,
            protocol::history(to.id, &channel, &epoch, &publications),
        ),
        HistoryTo::Control(tx) => {
            let _ = tx.send(HistoryAnswer {
                epoch: epoch.into(),
                publications,
            });
        }
    }
    Ok(())
}
