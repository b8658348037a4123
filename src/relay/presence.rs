//! Cluster-wide presence by scatter/gather over Redis: the asking instance publishes a
//! query on `cluster`; every other instance gathers its shards' parts and answers on
//! `reply.<asker>`; the asker waits for as many answers as it has live peers, for at most
//! `REMOTE_TIMEOUT` (an instance that died a moment ago is still listed as a peer for a
//! few seconds; its part is then missing, and counted).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::envelope::{self, Kind};
use super::{Out, Topic};
use crate::protocol::{PresenceUser, Status};
use crate::shared::Shared;

/// How long the other instances have to answer (below the shards' 2 s gather timeout).
pub const REMOTE_TIMEOUT: Duration = Duration::from_millis(1200);

pub(crate) struct Waiting {
    expected: usize,
    answered: usize,
    users: Vec<PresenceUser>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    user: &'a str,
    conns: u32,
    status: &'a str,
    #[serde(borrow)]
    info: &'a RawValue,
}

/// The other instances' parts of a channel's presence (empty without peers or Redis).
pub async fn gather_remote(shared: &Arc<Shared>, channel: &str) -> Vec<PresenceUser> {
    let Some(handle) = shared.relay.as_ref() else {
        return Vec::new();
    };
    let expected = handle.peers.lock().unwrap_or_else(|e| e.into_inner()).len();
    if expected == 0 || !handle.is_up() {
        return Vec::new();
    }
    let query = handle.next_query.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle
        .queries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            query,
            Waiting {
                expected,
                answered: 0,
                users: Vec::new(),
                done: Some(tx),
            },
        );
    let bytes = envelope::encode(
        Kind::PresenceQuery,
        &shared.instance,
        "",
        channel,
        query.to_string().as_bytes(),
    );
    handle.push(Out::Envelope {
        topic: Topic::Cluster,
        bytes,
    });
    let _ = tokio::time::timeout(REMOTE_TIMEOUT, rx).await;
    let w = handle
        .queries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&query);
    match w {
        Some(w) => {
            if w.answered < w.expected {
                tracing::info!(
                    channel,
                    answered = w.answered,
                    expected = w.expected,
                    "presence: not every instance answered in time"
                );
            }
            w.users
        }
        None => Vec::new(),
    }
}

/// Another instance asks for this instance's part: gather it and answer.
pub fn answer_query(shared: &Arc<Shared>, origin: &str, channel: &str, query: &str) {
    let shared = shared.clone();
    let (origin, channel, query) = (origin.to_string(), channel.to_string(), query.to_string());
    tokio::spawn(async move {
        let users = crate::control::ops::local_presence(&shared, &channel)
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
            handle.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut queries = handle.queries.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = queries.get_mut(&query) else {
        return;
    };
    w.users.extend(users);
    w.answered += 1;
    if w.answered >= w.expected {
        if let Some(done) = w.done.take() {
            let _ = done.send(());
        }
    }
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

/// One entry per user: a user connected to several instances appears once, with the
/// connections added up (and `online` if any part says so).
pub fn merge(users: Vec<PresenceUser>) -> Vec<PresenceUser> {
    let mut at: HashMap<Box<str>, usize> = HashMap::with_capacity(users.len());
    let mut out: Vec<PresenceUser> = Vec::with_capacity(users.len());
    for u in users {
        match at.get(&u.user) {
            Some(&i) => {
                out[i].conns += u.conns;
                if u.status == Status::Online {
                    out[i].status = Status::Online;
                }
            }
            None => {
                at.insert(u.user.clone(), out.len());
                out.push(u);
            }
        }
    }
    out
}
