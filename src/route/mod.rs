//! Routing: the one place that decides where something for a shard goes, on this instance
//! (layer 2 of docs/architecture.md). Shards and the background services (server API,
//! relay, rpc proxy) reach shards only through these functions, never through each other.
//!
//! Every function takes `here`: the shard calling it (`None` from a service thread). When
//! the destination is `here`, nothing is sent: the function hands the work back (a `bool`,
//! the frame, or the [`ShardMsg`] itself) and the calling shard does it at once, without a trip
//! through its own inbox. Everything else goes to the destination shard's inbox.
//!
//! Destinations: a publication goes to every shard with subscribers for its channel (the
//! interest map); a direct message to the user's shard (`hash(user) % N`); a publication on
//! a channel with history to its sequencer (Redis through the relay queue when configured,
//! else the channel's owner shard, `hash(channel) % N`), and so do recovery and history
//! reads; a frame for one connection to the shard that holds it.

pub mod inbox;
pub mod ops;
pub mod relay_queue;
pub mod rpc_queue;
pub mod token_queue;
pub mod webhook_queue;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::Since;
use crate::shared::Shared;
use crate::telemetry::TraceParent;
use inbox::{AckTo, ConnRef, HistoryTo, RecoverTo, ShardMsg};
use relay_queue::{Append, Out};

/// Queues a publication's finished frame to every shard on this instance with subscribers
/// for `channel`. True when `here` has subscribers too: the caller delivers it itself.
///
/// On channels with history, `offset` lets a catching-up subscriber tell new from already
/// recovered; `stamp` is when the server API received it (the publish-to-write histogram).
pub fn deliver(
    shared: &Shared,
    here: Option<usize>,
    channel: &str,
    frame: &Bytes,
    offset: Option<u64>,
    stamp: Option<Instant>,
) -> bool {
    let shards = shared.interested(channel);
    forward(shared, here, shards, channel, frame, offset, stamp)
}

/// A publication that starts on this instance, on a channel without history: to the other
/// instances through the relay (when configured), and to every shard here with subscribers.
/// `make` builds the frame, only when someone may receive it. Returns the frame when `here`
/// has subscribers too. `parent`: a client's `traceparent`, for the relay's span.
pub fn publish(
    shared: &Shared,
    here: Option<usize>,
    channel: &str,
    make: impl FnOnce() -> Bytes,
    parent: Option<TraceParent>,
) -> Option<Bytes> {
    let shards = shared.interested(channel);
    if shards == 0 && shared.relay.is_none() {
        return None;
    }
    let frame = make();
    relay_publication(shared, channel, &frame, parent);
    forward(shared, here, shards, channel, &frame, None, None).then_some(frame)
}

/// The interest loop: one inbox message per shard in `shards` other than `here`.
fn forward(
    shared: &Shared,
    here: Option<usize>,
    mut shards: u64,
    channel: &str,
    frame: &Bytes,
    offset: Option<u64>,
    stamp: Option<Instant>,
) -> bool {
    let mut local = false;
    let mut name: Option<Arc<str>> = None;
    while shards != 0 {
        let shard = shards.trailing_zeros() as usize;
        shards &= shards - 1;
        if Some(shard) == here {
            local = true;
            continue;
        }
        let channel = name.get_or_insert_with(|| channel.into()).clone();
        let frame = frame.clone();
        shared.send(
            shard,
            ShardMsg::Publish {
                channel,
                frame,
                stamp,
                offset,
            },
        );
    }
    local
}

/// Sends a publication's finished frame to the other instances' subscribers of `channel`
/// (nothing without Redis). `parent`: a client's `traceparent`, for the relay's span.
pub fn relay_publication(
    shared: &Shared,
    channel: &str,
    frame: &Bytes,
    parent: Option<TraceParent>,
) {
    if let Some(relay) = &shared.relay {
        let payload = crate::ws::frame::payload_of(frame);
        let topic = relay_queue::Topic::Channel(channel.into());
        let kind = crate::protocol::envelope::Kind::Message;
        let bytes =
            crate::protocol::envelope::encode(kind, &shared.instance, "", channel, &payload);
        relay.push(Out::Envelope {
            topic,
            bytes,
            parent,
        });
    }
}

/// Sends a direct message's finished frame to the other instances (the user may be
/// connected there too; nothing without Redis).
pub fn relay_direct(shared: &Shared, user: &str, frame: &Bytes) {
    if let Some(relay) = &shared.relay {
        let payload = crate::ws::frame::payload_of(frame);
        let topic = relay_queue::Topic::Cluster;
        let kind = crate::protocol::envelope::Kind::Direct;
        relay.send(&shared.instance, topic, kind, None, user, &payload);
    }
}

/// A message for shard `to`: handed back when that is `here`, else queued to its inbox.
fn post(shared: &Shared, here: Option<usize>, to: usize, msg: ShardMsg) -> Option<ShardMsg> {
    if Some(to) == here {
        return Some(msg);
    }
    shared.send(to, msg);
    None
}

/// A direct message's frame to every connection of `user` on this instance (its shard).
/// Returns the frame when that shard is `here`: the caller delivers it itself.
pub fn send(shared: &Shared, here: Option<usize>, user: &str, frame: Bytes) -> Option<Bytes> {
    let shard = shared.shard_of(user);
    if Some(shard) == here {
        return Some(frame);
    }
    let user = user.into();
    shared.send(shard, ShardMsg::Direct { user, frame });
    None
}

/// A frame for one connection, on whichever shard holds it.
pub fn to_conn(
    shared: &Shared,
    here: Option<usize>,
    to: ConnRef,
    frame: Bytes,
) -> Option<ShardMsg> {
    post(shared, here, to.shard, ShardMsg::ToConn { to, frame })
}

/// A recovery's answer (`Recovered`), to the shard that asked.
pub fn answer(
    shared: &Shared,
    here: Option<usize>,
    to: RecoverTo,
    msg: ShardMsg,
) -> Option<ShardMsg> {
    post(shared, here, to.shard(), msg)
}

/// Hands a publication on a channel with history to its sequencer: Redis (through the
/// relay queue) when configured, else the channel's owner shard. `ack` hears the offset.
pub fn sequence(
    shared: &Shared,
    here: Option<usize>,
    channel: &str,
    data: &str,
    from: Option<&str>,
    ack: Option<AckTo>,
    stamp: Option<Instant>,
) -> Option<ShardMsg> {
    let (channel, data, from): (Arc<str>, Box<str>, _) =
        (channel.into(), data.into(), from.map(Into::into));
    if let Some(relay) = &shared.relay {
        let append = Append {
            channel,
            data,
            from,
            ack,
        };
        relay.push_or_refuse(shared, Out::Sequence(append));
        return None;
    }
    let owner = shared.owner_of(&channel);
    let msg = ShardMsg::Sequence {
        channel,
        data,
        from,
        ack,
        stamp,
    };
    post(shared, here, owner, msg)
}

/// Asks the sequencer where a subscription on a channel with history stands, and what it
/// missed since `since`; the answer (`Recovered`) goes to the asking shard.
pub fn ask_recovery(
    shared: &Shared,
    here: Option<usize>,
    channel: Arc<str>,
    since: Option<Since>,
    to: RecoverTo,
) -> Option<ShardMsg> {
    if let Some(relay) = &shared.relay {
        relay.push_or_refuse(shared, Out::Recover { channel, since, to });
        return None;
    }
    let owner = shared.owner_of(&channel);
    post(
        shared,
        here,
        owner,
        ShardMsg::Recover { channel, since, to },
    )
}

/// Asks the sequencer for a channel's stored publications after `since`, at most `limit`.
pub fn ask_history(
    shared: &Shared,
    here: Option<usize>,
    channel: Arc<str>,
    since: Option<u64>,
    limit: usize,
    to: HistoryTo,
) -> Option<ShardMsg> {
    if let Some(relay) = &shared.relay {
        let out = Out::History {
            channel,
            since,
            limit,
            to,
        };
        relay.push_or_refuse(shared, out);
        return None;
    }
    let owner = shared.owner_of(&channel);
    let msg = ShardMsg::History {
        channel,
        since,
        limit,
        to,
    };
    post(shared, here, owner, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Verifier;
    use crate::config::Config;

    fn shared(shards: usize) -> Arc<Shared> {
        let config = Config::default();
        let verifier = Verifier::new(&config, b"x").unwrap();
        Shared::new(config, verifier, "i".into(), shards)
    }

    fn drained(s: &Shared, shard: usize) -> Vec<ShardMsg> {
        std::iter::from_fn(|| s.inboxes[shard].try_recv()).collect()
    }

    #[test]
    fn a_publication_reaches_each_interested_shard_once_and_comes_back_for_here() {
        let s = shared(4);
        let ch: Arc<str> = "t:1".into();
        s.add_interest(&ch, 1);
        s.add_interest(&ch, 3);
        let frame = Bytes::from_static(b"x");
        assert!(deliver(&s, Some(3), "t:1", &frame, None, None));
        assert!(drained(&s, 3).is_empty(), "here is handed back, not queued");
        assert!(matches!(&drained(&s, 1)[..], [ShardMsg::Publish { .. }]));
        assert!(drained(&s, 0).is_empty() && drained(&s, 2).is_empty());
        assert!(!deliver(&s, None, "t:1", &frame, Some(7), None));
        assert!(matches!(
            &drained(&s, 3)[..],
            [ShardMsg::Publish {
                offset: Some(7),
                ..
            }]
        ));
    }

    #[test]
    fn a_frame_is_made_only_when_someone_listens() {
        let s = shared(2);
        let made = std::cell::Cell::new(false);
        let make = || {
            made.set(true);
            Bytes::new()
        };
        assert!(publish(&s, Some(0), "t:2", make, None).is_none());
        assert!(!made.get(), "no subscriber and no relay: no frame");
    }

    #[test]
    fn the_owner_shard_sequences_and_gets_its_own_work_back() {
        let s = shared(4);
        let owner = s.owner_of("h:1");
        let msg = sequence(&s, Some(owner), "h:1", "1", None, None, None);
        assert!(matches!(msg, Some(ShardMsg::Sequence { .. })));
        let other = (owner + 1) % 4;
        assert!(sequence(&s, Some(other), "h:1", "1", None, None, None).is_none());
        assert!(matches!(
            &drained(&s, owner)[..],
            [ShardMsg::Sequence { .. }]
        ));
    }

    #[test]
    fn a_direct_message_goes_to_the_users_shard() {
        let s = shared(4);
        let shard = s.shard_of("alice");
        assert!(send(&s, Some(shard), "alice", Bytes::new()).is_some());
        assert!(send(&s, None, "alice", Bytes::new()).is_none());
        assert!(matches!(&drained(&s, shard)[..], [ShardMsg::Direct { .. }]));
    }
}
