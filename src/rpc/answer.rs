//! What a backend answered, and where that goes: a client's `rpc` gets a `result` or an
//! `error` frame (`RpcDone`); a proxy's question gets a verdict (`ProxyDone`).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::auth::opaque::Refusal;
use crate::auth::Identity;
use crate::protocol::{self, ErrorCode};
use crate::route::inbox::{ConnRef, ShardMsg};
use crate::route::rpc_queue::{Purpose, Verdict};
use crate::shared::Shared;

/// What became of a call.
pub(super) enum Outcome {
    /// The backend's `data` (and, for the subscribe proxy, `info`).
    Data {
        data: Option<Box<RawValue>>,
        info: Option<Box<RawValue>>,
    },
    /// The backend's own `error`.
    Refused(ErrorCode, String, Option<u64>),
    /// No usable answer.
    Failed(ErrorCode, String),
    /// A 200's body, not read yet.
    Raw(Bytes),
    /// The connect proxy's answer.
    Connect(Result<Identity, Refusal>),
}

impl Outcome {
    /// The frame for the client: none for a success without `id` (§2).
    pub(super) fn frame(&self, id: Option<u64>) -> Option<Bytes> {
        match self {
            Outcome::Data { data, .. } => {
                let data = data.as_deref().unwrap_or(RawValue::NULL);
                id.is_some().then(|| protocol::result(id, data))
            }
            Outcome::Refused(ErrorCode::RateLimited, _, retry) => {
                Some(protocol::rate_limited(id, retry.unwrap_or(1000)))
            }
            Outcome::Refused(code, message, _) | Outcome::Failed(code, message) => {
                Some(protocol::error(id, *code, message))
            }
            Outcome::Raw(_) | Outcome::Connect(_) => {
                let message = "the backend's answer was not for this request";
                Some(protocol::error(id, ErrorCode::Internal, message))
            }
        }
    }
}

/// Sends what became of a call to the connection's shard: `Err` is an error frame the hub
/// made itself (a breaker open, the proxy down).
pub(super) fn finish(
    shared: &Shared,
    to: ConnRef,
    purpose: Purpose,
    outcome: Result<Outcome, Bytes>,
) {
    let msg = match purpose {
        Purpose::Connect { refresh } => ShardMsg::ConnectDone {
            to,
            refresh,
            cache: None,
            result: match outcome {
                Ok(Outcome::Connect(r)) => r.map(Box::new),
                Ok(Outcome::Failed(_, message)) => Err(Refusal::Unavailable(message.into())),
                _ => Err(Refusal::Unavailable(
                    "the connect backend is failing; calls to it are paused".into(),
                )),
            },
        },
        Purpose::Rpc => ShardMsg::RpcDone {
            to,
            frame: match outcome {
                Ok(o) => o.frame(to.id),
                Err(frame) => Some(frame),
            },
        },
        purpose => {
            let verdict = match outcome {
                Ok(Outcome::Data { data, info }) => Verdict::Allow {
                    data: data.map(|d| d.get().into()),
                    info: info.map(|i| i.get().into()),
                },
                Ok(o) => Verdict::Refuse(o.frame(to.id).unwrap_or_default()),
                Err(frame) => Verdict::Refuse(frame),
            };
            ShardMsg::ProxyDone {
                to,
                purpose,
                verdict,
            }
        }
    };
    shared.send(to.shard, msg);
}

/// `{"data": ...}` or `{"error": {"code": ..., "message": ..., "retry_after_ms": ...}}`.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    info: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<BackendError>,
}

#[derive(Deserialize)]
struct BackendError {
    code: String,
    #[serde(default, alias = "reason")]
    message: Option<String>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

pub(super) fn read_answer(body: &[u8]) -> Outcome {
    // serde reads a struct from a JSON array too (`[]` would pass as `{}`): only an object is
    // an answer.
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let answer = match is_object.then(|| serde_json::from_slice::<Answer>(body)) {
        Some(Ok(a)) => a,
        _ => {
            let message = "the rpc backend's answer is not the expected JSON object";
            return Outcome::Failed(ErrorCode::Internal, message.into());
        }
    };
    match (answer.error, answer.data, answer.info) {
        (Some(e), _, _) => {
            let message = e
                .message
                .unwrap_or_else(|| "refused by the rpc backend".into());
            match ErrorCode::parse(&e.code) {
                Some(code) => Outcome::Refused(code, message, e.retry_after_ms),
                None => Outcome::Refused(
                    ErrorCode::Internal,
                    format!("{message} (backend code {:?})", e.code),
                    None,
                ),
            }
        }
        // `{"data": null}` reads as no `data`: null it is.
        (None, data, info) => Outcome::Data { data, info },
    }
}
