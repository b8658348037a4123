//! What arrives from Redis: publications for local subscribers, cluster operations,
//! presence answers, and backends' egress. Each is handed to the shards through their
//! inboxes; a message from this instance itself is skipped (it was delivered locally).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{egress, malformed, presence};
use crate::protocol::envelope::{self, Kind};
use crate::revocation::Rule;
use crate::route::inbox::ShardMsg;
use crate::route::ops;
use crate::shared::Shared;
use crate::ws::frame::{self, Opcode};

pub fn handle(shared: &Arc<Shared>, msg: &redis::Msg) {
    let relay = shared.relay.as_ref().expect("relay configured");
    relay.stats.received.fetch_add(1, Ordering::Relaxed);
    let prefix = &shared.config.redis_prefix;
    let topic = msg.get_channel_name();
    let Some(name) = topic.strip_prefix(prefix.as_str()) else {
        return;
    };
    let payload = msg.get_payload_bytes();
    if name == "egress" {
        return egress::handle(shared, payload, false);
    }
    if name.strip_prefix("egress.") == Some(shared.instance.as_str()) {
        return egress::handle(shared, payload, true);
    }
    let Some(e) = envelope::decode(payload) else {
        return malformed::relay(shared, topic, payload.len(), "not a relay envelope");
    };
    if e.origin == shared.instance {
        return;
    }
    // What goes to clients as a text frame must be one: UTF-8, and (not parsed, for speed)
    // shaped as the JSON object every instance writes.
    let frames = matches!(e.kind, Kind::Message | Kind::Direct | Kind::BroadcastAll);
    if frames && !json_object_text(e.payload) {
        return malformed::relay(shared, topic, payload.len(), "payload is not a JSON object");
    }
    let cause = (!e.cause.is_empty()).then(|| Arc::<str>::from(e.cause));
    match e.kind {
        Kind::Message => {
            let offset = envelope::message_offset(e.payload);
            let frame = frame::encode(Opcode::Text, e.payload);
            crate::route::deliver(shared, None, e.target, &frame, offset, None);
        }
        Kind::Direct => shared.send(
            shared.shard_of(e.target),
            ShardMsg::Direct {
                user: e.target.into(),
                frame: frame::encode(Opcode::Text, e.payload),
            },
        ),
        Kind::BroadcastAll => {
            let frame = frame::encode(Opcode::Text, e.payload);
            for shard in 0..shared.shards() {
                shared.send(
                    shard,
                    ShardMsg::BroadcastAll {
                        frame: frame.clone(),
                    },
                );
            }
        }
        Kind::Disconnect => shared.send(
            shared.shard_of(e.target),
            ShardMsg::Disconnect {
                user: e.target.into(),
                reason: String::from_utf8_lossy(e.payload).into(),
                cause,
                reply: None,
            },
        ),
        Kind::Revoke => match serde_json::from_slice::<Rule>(e.payload) {
            Ok(rule) => ops::install_rule(shared, rule),
            Err(_) => malformed::relay(shared, topic, payload.len(), "bad revocation rule"),
        },
        Kind::Subscribe | Kind::Unsubscribe => {
            let Ok(channel) = std::str::from_utf8(e.payload) else {
                return malformed::relay(shared, topic, payload.len(), "channel is not UTF-8");
            };
            shared.send(
                shared.shard_of(e.target),
                ShardMsg::Subscription {
                    user: e.target.into(),
                    channel: channel.into(),
                    subscribe: e.kind == Kind::Subscribe,
                    cause,
                    reply: None,
                },
            );
        }
        Kind::PresenceQuery => {
            let query = String::from_utf8_lossy(e.payload);
            presence::answer_query(shared, e.origin, e.target, &query);
        }
        Kind::PresenceAnswer => presence::take_answer(shared, e.target, e.payload),
        Kind::Mute => match serde_json::from_slice::<crate::mutes::Mute>(e.payload) {
            Ok(mute) if mute.valid() => ops::mute(shared, mute, &cause, ops::Scope::Local),
            _ => {
                relay.stats.malformed.fetch_add(1, Ordering::Relaxed);
            }
        },
        Kind::Unmute => match std::str::from_utf8(e.payload) {
            Ok(scope) => ops::unmute_nowait(shared, e.target, scope),
            Err(_) => {
                relay.stats.malformed.fetch_add(1, Ordering::Relaxed);
            }
        },
    }
}

/// UTF-8 text from `{` to `}`: what a relayed frame's JSON looks like from outside.
fn json_object_text(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
        && payload.last() == Some(&b'}')
        && std::str::from_utf8(payload).is_ok()
}
