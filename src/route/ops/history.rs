//! Operations on channels with history: publications that need their offset, and reading
//! what a channel keeps. The sequencer is the channel's owner shard, or Redis (`relay`).

use std::time::Instant;

use serde_json::value::RawValue;

use super::{answer, check_channel, OpError};
use crate::route::inbox::{AckTo, HistoryAnswer, HistoryTo};
use crate::shared::Shared;

/// A publication on a channel with history; answers its offset.
pub async fn publish_sequenced(
    shared: &Shared,
    channel: &str,
    data: &RawValue,
    stamp: Option<Instant>,
) -> Result<u64, OpError> {
    check_channel(channel)?;
    crate::route::webhook_queue::publication(shared, channel, data.get(), None);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ack = Some(AckTo::Control(tx));
    let _ = crate::route::sequence(shared, None, channel, data.get(), None, ack, stamp);
    answer(rx).await
}

/// Stored publications of a channel after `since`, at most `limit`.
pub async fn history(
    shared: &Shared,
    channel: &str,
    since: Option<u64>,
    limit: usize,
) -> Result<HistoryAnswer, OpError> {
    check_channel(channel)?;
    if !shared.config.keeps_history(channel) {
        return Err(OpError::NotFound(
            "this channel's namespace keeps no history".into(),
        ));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let to = HistoryTo::Control(tx);
    let _ = crate::route::ask_history(shared, None, channel.into(), since, limit, to);
    answer(rx).await
}
