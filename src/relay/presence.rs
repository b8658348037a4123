//! Cluster-wide presence by scatter/gather over Redis, the relay's part: the asking
//! instance publishes a query on `cluster` (`route::ops::remote_presence`); every other
//! instance gathers its shards' parts and answers on `reply.<asker>` (`answer_query`); the
//! answers are handed to the asker's waiting query (`take_answer`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::protocol::envelope::{self, Kind};
use crate::protocol::{PresenceUser, Status};
use crate::route::relay_queue::{Out, Topic};
use crate::shared::Shared;

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    user: &'a str,
    conns: u32,
    status: &'a str,
    #[serde(borrow)]
    info: &'a RawValue,
}

/// Another instance asks for this instance's part: gather it and answer.
pub fn answer_query(shared: &Arc<Shared>, origin: &str, channel: &str, query: &str) {
    let shared = shared.clone();
    let (origin, channel, query) = (origin.to_string(), channel.to_string(), query.to_string());
    tokio::spawn(async move {
        let users = crate::route::ops::local_presence(&shared, &channel)
            .await
            .unwrap_or_default();
        let payload = encode_users(&users);
        let bytes = envelope::encode(
            Kind::PresenceAnswer,
            &shared.instance,
            "",
            &query,
            payload.as_bytes(),
        );
        if let Some(h) = shared.relay.as_ref() {
            h.push(Out::Envelope {
                topic: Topic::Reply(origin.into()),
                bytes,
                parent: None,
            });
        }
    });
}

/// An answer to one of this instance's queries arrived.
pub fn take_answer(shared: &Shared, query: &str, payload: &[u8]) {
    let (Some(handle), Ok(query)) = (shared.relay.as_ref(), query.parse::<u64>()) else {
        return;
    };
    let users = match decode_users(payload) {
        Some(u) => u,
        None => {
            let topic = "reply";
            return super::malformed::relay(shared, topic, payload.len(), "bad presence answer");
        }
    };
    handle.queries.answer(query, users);
}

fn encode_users(users: &[PresenceUser]) -> String {
    let wire: Vec<Wire<'_>> = users
        .iter()
        .filter_map(|u| {
            Some(Wire {
                user: &u.user,
                conns: u.conns,
                status: u.status.as_str(),
                info: serde_json::from_str(&u.info).ok()?,
            })
        })
        .collect();
    serde_json::to_string(&wire).expect("presence serializes")
}

fn decode_users(payload: &[u8]) -> Option<Vec<PresenceUser>> {
    let wire: Vec<Wire<'_>> = serde_json::from_slice(payload).ok()?;
    Some(
        wire.into_iter()
            .map(|w| PresenceUser {
                user: w.user.into(),
                conns: w.conns,
                status: Status::parse(w.status).unwrap_or_default(),
                info: w.info.get().into(),
            })
            .collect(),
    )
}
