//! Operations on channels with history: publications that need their offset, and reading
//! what a channel keeps. The sequencer is the channel's owner shard, or Redis (`relay`).

use std::time::Instant;

use serde_json::value::RawValue;

use super::{answer, check_channel, keeps_history, OpError};
use crate::shard::inbox::{AckTo, HistoryAnswer, HistoryTo, ShardMsg};
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
    sequence(shared, channel, data.get(), Some(AckTo::Control(tx)), stamp);
    answer(rx).await
}

pub(crate) fn sequence(
    shared: &Shared,
    channel: &str,
    data: &str,
    ack: Option<AckTo>,
    stamp: Option<Instant>,
) {
    if let Some(relay) = &shared.relay {
        let append = crate::relay::history::Append {
            channel: channel.into(),
            data: data.into(),
            from: None,
            ack,
        };
        return relay.push_or_refuse(shared, crate::relay::Out::Sequence(append));
    }
    shared.send(
        shared.owner_of(channel),
        ShardMsg::Sequence {
            channel: channel.into(),
            data: data.into(),
            from: None,
            ack,
            stamp,
        },
    );
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
    let to = HistoryTo::Control(tx);
    match &shared.relay {
        Some(relay) => {
            let out = crate::relay::Out::History {
                channel: channel.into(),
                since,
                limit,
                to,
            };
            relay.push_or_refuse(shared, out);
        }
        None => shared.send(
            shared.owner_of(channel),
            ShardMsg::History {
                channel: channel.into(),
                since,
                limit,
                to,
            },
        ),
    }
    answer(rx).await
}
