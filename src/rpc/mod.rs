//! `rpc` (`docs/protocol.md` §2 and §9): a client's call, forwarded over HTTP to the backend
//! configured for its method, and the backend's answer sent back as `result`.
//!
//! A shard checks the call, picks the backend (`config::Routes::backend`) and queues it here
//! without waiting. The control thread posts it (at most `rpc_max_in_flight` at once, over
//! keep-alive connections) and sends the answer frame to the connection through its shard's
//! inbox; a shard never waits for a backend. The backend's side of it is in `docs/rpc.md`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::protocol::{self, ErrorCode};
use crate::route::inbox::ShardMsg;
use crate::route::rpc_queue::Call;
use crate::shared::Shared;

/// Largest backend answer relayed to a client.
const MAX_ANSWER: usize = 1 << 20;
/// Keep-alive connections to a backend idle this long are closed.
const IDLE: Duration = Duration::from_secs(60);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The control thread's loop: posts every queued call, `rpc_max_in_flight` at once.
pub async fn run(shared: Arc<Shared>) {
    let Some(rpc) = shared.rpc.as_ref() else {
        return;
    };
    let Some(mut rx) = rpc.take_receiver() else {
        return;
    };
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build_http();
    let permits = Arc::new(tokio::sync::Semaphore::new(rpc.max_in_flight()));
    while let Some(call) = rx.recv().await {
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let (shared, client) = (shared.clone(), client.clone());
        tokio::spawn(async move {
            let rpc = shared.rpc.as_ref().expect("checked above");
            let to = call.to;
            let outcome = post(&client, call, rpc.timeout()).await;
            drop(permit);
            let counter = match &outcome {
                Outcome::Data(_) | Outcome::Refused(..) => &rpc.stats.answered,
                Outcome::Failed(..) => &rpc.stats.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let frame = outcome.frame(to.id);
            shared.send(to.shard, ShardMsg::RpcDone { to, frame });
        });
    }
}

/// What became of a call.
enum Outcome {
    /// The backend's `data`.
    Data(Box<RawValue>),
    /// The backend's own `error`.
    Refused(ErrorCode, String, Option<u64>),
    /// No usable answer.
    Failed(ErrorCode, String),
}

impl Outcome {
    /// The frame for the client: none for a success without `id` (§2).
    fn frame(&self, id: Option<u64>) -> Option<Bytes> {
        match self {
            Outcome::Data(data) => id.is_some().then(|| protocol::result(id, data)),
            Outcome::Refused(ErrorCode::RateLimited, _, retry) => {
                Some(protocol::rate_limited(id, retry.unwrap_or(1000)))
            }
            Outcome::Refused(code, message, _) | Outcome::Failed(code, message) => {
                Some(protocol::error(id, *code, message))
            }
        }
    }
}

/// Posts a call and reads the answer, all within what is left of `timeout`.
async fn post(client: &HttpClient, call: Call, timeout: Duration) -> Outcome {
    let left = (call.queued_at + timeout).saturating_duration_since(Instant::now());
    let request = hyper::Request::post(call.url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(call.body)));
    let request = match request {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(ErrorCode::Internal, format!("rpc request: {e}")),
    };
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            tracing::debug!(error = %e, "rpc backend unreachable");
            Outcome::Failed(
                ErrorCode::Unavailable,
                "the rpc backend is unreachable".into(),
            )
        })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|_| {
                Outcome::Failed(
                    ErrorCode::Internal,
                    "the rpc backend's answer is unreadable or over 1 MiB".into(),
                )
            })?
            .to_bytes();
        Ok((status, body))
    };
    let (status, body) = match tokio::time::timeout(left, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(outcome)) => return outcome,
        Err(_) => {
            let message = format!("the rpc backend did not answer within {timeout:?}");
            return Outcome::Failed(ErrorCode::Timeout, message);
        }
    };
    if !status.is_success() {
        let message = format!("the rpc backend answered HTTP {}", status.as_u16());
        return Outcome::Failed(ErrorCode::Unavailable, message);
    }
    read_answer(&body)
}

/// `{"data": ...}` or `{"error": {"code": ..., "message": ..., "retry_after_ms": ...}}`.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<BackendError>,
}

#[derive(Deserialize)]
struct BackendError {
    code: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

fn read_answer(body: &[u8]) -> Outcome {
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
    match (answer.error, answer.data) {
        (Some(e), _) => {
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
        (None, Some(data)) => Outcome::Data(data),
        // `{"data": null}` reads as no `data`: null it is.
        (None, None) => Outcome::Data(RawValue::NULL.to_owned()),
    }
}

#[cfg(test)]
mod tests;
