//! `rpc` (`docs/protocol.md` §2 and §9): a client's call, forwarded over HTTP to the backend
//! configured for its method, and the backend's answer sent back as `result`.
//!
//! A shard checks the call, picks the backend (`config::Routes::backend`) and queues it here
//! without waiting. The control thread posts it (at most `rpc_max_in_flight` at once, over
//! keep-alive connections) and sends the answer frame to the connection through its shard's
//! inbox; a shard never waits for a backend. The backend's side of it is in `docs/rpc.md`.
//!
//! Each backend has a circuit breaker (`crate::breaker`): while it is open, calls are
//! answered `unavailable` with `retry_after_ms` at once, and nothing is sent. A call whose
//! client disconnects stops waiting (counted); its late answer is dropped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::auth::opaque::{self, RETRY_LATER};
use crate::protocol::{self, ErrorCode};
use crate::route::rpc_queue::{Call, Purpose};
use crate::shared::Shared;
use crate::telemetry::TraceParent;

/// Largest backend answer relayed to a client.
const MAX_ANSWER: usize = 1 << 20;
/// Keep-alive connections to a backend idle this long are closed.
const IDLE: Duration = Duration::from_secs(60);

type HttpClient = Client<tls::Connector, Full<Bytes>>;

/// The control thread's loop: posts every queued call, `rpc_max_in_flight` at once.
pub async fn run(shared: Arc<Shared>) {
    let Some(rpc) = shared.rpc.as_ref() else {
        return;
    };
    let Some(mut rx) = rpc.take_receiver() else {
        return;
    };
    let connector = match tls::connector(&shared.config) {
        Ok(c) => c,
        Err(e) => {
            // Calls are then refused one by one (as with an unreachable backend).
            tracing::error!(error = %e, "rpc: cannot set up TLS to backends; rpc is off");
            return refuse_all(&shared, &mut rx).await;
        }
    };
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build(connector);
    let permits = Arc::new(tokio::sync::Semaphore::new(rpc.max_in_flight()));
    let secret: Option<Arc<[u8]>> = shared
        .config
        .rpc_secret
        .as_deref()
        .map(|s| s.as_bytes().into());
    while let Some(call) = rx.recv().await {
        let to = call.to;
        let span = traced::start(&shared, &call);
        let breaker = rpc.breaker_at(&call.url);
        if let Some(Err(retry_after)) = breaker.map(|i| rpc.breakers[i].admit()) {
            let message = "the rpc backend is failing; calls to it are paused";
            let retry_ms = retry_after.as_millis().max(1) as u64;
            let frame = protocol::error_retry(to.id, ErrorCode::Unavailable, message, retry_ms);
            rpc.stats.failed.fetch_add(1, Ordering::Relaxed);
            traced::end(span, Err("breaker_open"));
            finish(&shared, to, call.purpose, Err(frame));
            continue;
        }
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let (shared, client, secret) = (shared.clone(), client.clone(), secret.clone());
        tokio::spawn(async move {
            let rpc = shared.rpc.as_ref().expect("checked above");
            let mut call = call;
            // Taken, not cloned: a publish proxy's purpose holds the publication's data.
            let connect = matches!(call.purpose, Purpose::Connect { .. });
            let purpose = std::mem::replace(&mut call.purpose, Purpose::Rpc);
            let mut gone = call.gone.clone();
            let traceparent = span.as_ref().map(|s| s.traceparent());
            let posted = Instant::now();
            let outcome = tokio::select! {
                outcome = post(&client, &shared.instance, secret.as_deref(), call, connect, traceparent) => Some(outcome),
                // The sender is dropped with the connection.
                _ = gone.changed() => None,
            };
            drop(permit);
            let Some((outcome, fault)) = outcome else {
                rpc.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                traced::end(span, Err("cancelled"));
                return;
            };
            traced::end(span, Ok(&outcome));
            if let Some(i) = breaker {
                rpc.breakers[i].record(fault);
                let took = posted.elapsed().as_secs_f64();
                rpc.breakers[i].latency.observe(took);
            }
            let counter = match &outcome {
                Outcome::Data { .. } | Outcome::Refused(..) => &rpc.stats.answered,
                Outcome::Connect(Ok(_)) => &rpc.stats.answered,
                Outcome::Connect(Err(r)) if r.close_code() != RETRY_LATER => &rpc.stats.answered,
                Outcome::Connect(Err(_)) | Outcome::Raw(_) => &rpc.stats.failed,
                Outcome::Failed(..) => &rpc.stats.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            finish(&shared, to, purpose, Ok(outcome));
        });
    }
}

/// Answers every call `unavailable` (the proxy could not start).
async fn refuse_all(shared: &Shared, rx: &mut tokio::sync::mpsc::Receiver<Call>) {
    while let Some(call) = rx.recv().await {
        let message = "the backend proxy could not start (see the hub's log)";
        let frame = protocol::error(call.to.id, ErrorCode::Unavailable, message);
        finish(shared, call.to, call.purpose, Err(frame));
    }
}

/// Posts a call and reads the answer (a connect proxy's as an identity), all within what is
/// left of its timeout. Returns the
/// outcome, and whether it was the backend's fault (unreachable, timeout, 5xx): what the
/// breaker counts.
async fn post(
    client: &HttpClient,
    instance: &str,
    secret: Option<&[u8]>,
    call: Call,
    connect: bool,
    traceparent: Option<TraceParent>,
) -> (Outcome, bool) {
    let timeout = call.timeout;
    let left = (call.queued_at + timeout).saturating_duration_since(Instant::now());
    let caller = &call.caller;
    let mut request = hyper::Request::post(call.url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-ringhub-user", &*caller.user)
        .header("x-ringhub-conn", &*caller.conn)
        .header("x-ringhub-instance", instance)
        .header("x-request-id", &*caller.request_id);
    if let Some(tp) = traceparent {
        request = request.header("traceparent", &tp.header()[..]);
    }
    if let Some(secret) = secret {
        request = request.header(
            "x-ringhub-signature",
            crate::auth::sign::header(secret, &call.body),
        );
    }
    let request = match request.body(Full::new(Bytes::from(call.body))) {
        Ok(r) => r,
        Err(e) => {
            let outcome = Outcome::Failed(ErrorCode::Internal, format!("rpc request: {e}"));
            return (outcome, false);
        }
    };
    let (outcome, fault) = exchange(client, request, left, timeout, &caller.request_id).await;
    match outcome {
        Outcome::Raw(body) if connect => {
            let now = crate::auth::unix_now();
            (Outcome::Connect(opaque::from_answer(&body, now)), fault)
        }
        Outcome::Raw(body) => (read_answer(&body), fault),
        outcome => (outcome, fault),
    }
}

async fn exchange(
    client: &HttpClient,
    request: hyper::Request<Full<Bytes>>,
    left: Duration,
    timeout: Duration,
    request_id: &str,
) -> (Outcome, bool) {
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            tracing::debug!(error = %e, request_id, "rpc backend unreachable");
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
        Ok(Err(outcome)) => return (outcome, true),
        Err(_) => {
            tracing::debug!(request_id, "rpc backend timed out");
            let message = format!("the rpc backend did not answer within {timeout:?}");
            return (Outcome::Failed(ErrorCode::Timeout, message), true);
        }
    };
    if !status.is_success() {
        tracing::debug!(request_id, status = status.as_u16(), "rpc backend refused");
        let message = format!("the rpc backend answered HTTP {}", status.as_u16());
        return (
            Outcome::Failed(ErrorCode::Unavailable, message),
            status.is_server_error(),
        );
    }
    (Outcome::Raw(body), false)
}

mod answer;
#[cfg(test)]
mod tests;
mod tls;
mod traced;

use answer::{finish, read_answer, Outcome};
