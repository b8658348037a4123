//! Operations on channels with history: publications that need their offset, and reading
//! what a channel keeps. The sequencer is the channel's owner shard, or Redis (`relay`).

use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::{answer, check_channel, keeps_history, OpError};
use crate::protocol::Since;
use crate::relay::Out;
use crate::shard::inbox::{AckTo, ConnRef, HistoryAnswer, HistoryTo, ShardMsg};
use crate::shared::Shared;

/// A publication on a channel with history; answers its offset.
pub async fn publish_sequenced(
    shared: &Shared,
    channel: &str,
    data: &RawValue,
    stamp: Option<Instant>,
) -> Result<u64, OpError> {
    check_channel(channel)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    sequence(
        shared,
        channel,
        data.get(),
        None,
        Some(AckTo::Control(tx)),
        stamp,
    );
    answer(rx).await
}

/// Hands a publication to its channel's sequencer: Redis (through the relay) when
/// configured, else the channel's owner shard.
pub(crate) fn sequence(
    shared: &Shared,
    channel: &str,
    data: &str,
    from: Option<&str>,
    ack: Option<AckTo>,
    stamp: Option<Instant>,
) {
    if let Some(relay) = &shared.relay {
        let append = crate::relay::history::Append {
            channel: channel.into(),
            data: data.into(),
            from: from.map(Into::into),
            ack,
        };
        return relay.push_or_refuse(shared, Out::Sequence(append));
    }
    shared.send(
        shared.owner_of(channel),
        ShardMsg::Sequence {
            channel: channel.into(),
            data: data.into(),
            from: from.map(Into::into),
            ack,
            stamp,
        },
    );
}

/// Asks the sequencer where a subscription stands and what it missed.
pub(crate) fn ask_recovery(shared: &Shared, channel: Arc<str>, since: Option<Since>, to: ConnRef) {
    match &shared.relay {
        Some(relay) => relay.push_or_refuse(shared, Out::Recover { channel, since, to }),
        None => shared.send(
            shared.owner_of(&channel),
            ShardMsg::Recover { channel, since, to },
        ),
    }
}

/// Asks the sequencer for stored publications.
pub(crate) fn ask_history(
    shared: &Shared,
    channel: Arc<str>,
    since: Option<u64>,
    limit: usize,
    to: HistoryTo,
) {
    match &shared.relay {
        Some(relay) => {
            let out = Out::History {
                channel,
                since,
                limit,
                to,
            };
            relay.push_or_refuse(shared, out);
        }
        None => {
            let owner = shared.owner_of(&channel);
            let msg = ShardMsg::History {
                channel,
                since,
                limit,
                to,
            };
            shared.send(owner, msg);
        }
    }
}

/// Stored publications of a channel after `since`, at most `limit`.
pub async fn history(
    shared: &Shared,
    channel: &str,
    since: Option<u64>,
    limit: usize,
) -> Result<HistoryAnswer, OpError> {
    check_channel(channel)?;
    if !keeps_history(shared, channel) {
        return Err(OpError::NotFound(
            "this channel's namespace keeps no history".into(),
        ));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    ask_history(shared, channel.into(), since, limit, HistoryTo::Control(tx));
    answer(rx).await
}
