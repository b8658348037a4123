//! One event to one endpoint: attempts, backoff, and the dead letter.
//!
//! Retries wait with "full jitter" (Brooker, "Exponential Backoff And Jitter", AWS
//! Architecture Blog, 2015): before retry `n` (1, 2, ...) a delay drawn uniformly from
//! `[0, min(webhook_backoff_max, webhook_backoff * 2^(n-1))]`, so receivers coming back
//! from an outage are not hit by every instance's retries in step.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};

use super::{traced, HttpClient};
use crate::config::Delivery;
use crate::route::relay_queue::Out;
use crate::route::webhook_queue::{Endpoint, Event};
use crate::shared::Shared;

/// A receiver's answer body is read (so the connection can be kept) up to this much.
const MAX_ANSWER: usize = 64 << 10;

/// What one attempt came to.
enum Verdict {
    /// 2xx.
    Delivered,
    /// 4xx (or another status that is neither 2xx nor 5xx): not retried.
    Rejected(u16),
    /// 5xx, timeout, network error: retried while attempts are left.
    Failed(String),
}

/// Posts `event` until the receiver takes it, refuses it, or the attempts run out; then, if
/// it was not taken, dead-letters it.
pub async fn deliver(shared: &Shared, index: usize, client: &HttpClient, event: &Event) {
    let Some(hooks) = shared.webhooks.as_ref() else {
        return;
    };
    let endpoint = &hooks.endpoints[index];
    let delivery = &hooks.delivery;
    let mut span = traced::start(shared, &endpoint.url, event);
    let traceparent = span.as_ref().map(|s| s.traceparent());
    let mut attempt = 1;
    let reason = loop {
        match post(
            client,
            endpoint,
            event,
            attempt,
            delivery.timeout,
            traceparent,
        )
        .await
        {
            Verdict::Delivered => {
                endpoint.stats.delivered.fetch_add(1, Ordering::Relaxed);
                traced::end(span.take(), attempt, "delivered", None);
                return;
            }
            Verdict::Rejected(status) => {
                endpoint.stats.rejected.fetch_add(1, Ordering::Relaxed);
                break format!("rejected: HTTP {status}");
            }
            Verdict::Failed(why) if attempt >= delivery.attempts => {
                endpoint.stats.failed.fetch_add(1, Ordering::Relaxed);
                break why;
            }
            Verdict::Failed(why) => {
                tracing::debug!(endpoint = %endpoint.url, id = %event.id, attempt, error = %why, "webhook attempt failed; retrying");
                tokio::time::sleep(backoff(delivery, attempt)).await;
                endpoint.stats.retries.fetch_add(1, Ordering::Relaxed);
                attempt += 1;
            }
        }
    };
    traced::end(span, attempt, "given_up", Some(&reason));
    dead_letter(shared, endpoint, event, attempt, &reason);
}

/// The wait before retry `retry` (1 for the first): full jitter under an exponential cap.
fn backoff(delivery: &Delivery, retry: u32) -> Duration {
    let cap = delivery
        .backoff
        .saturating_mul(1 << (retry - 1).min(30))
        .min(delivery.backoff_max);
    cap.mul_f64(rand::random::<f64>())
}

async fn post(
    client: &HttpClient,
    endpoint: &Endpoint,
    event: &Event,
    attempt: u32,
    timeout: Duration,
    traceparent: Option<crate::telemetry::TraceParent>,
) -> Verdict {
    let mut request = hyper::Request::post(endpoint.uri.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("ringhub/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-ringhub-event", event.name)
        .header("x-ringhub-event-id", &*event.id)
        .header("x-ringhub-attempt", attempt);
    if let Some(tp) = traceparent {
        request = request.header("traceparent", &tp.header()[..]);
    }
    if let Some(secret) = &endpoint.secret {
        // Signed at each attempt: the timestamp says when it was sent, for replay checks.
        let signature = crate::auth::sign::header(secret, &event.body);
        request = request.header("x-ringhub-signature", signature);
    }
    let request = match request.body(Full::new(event.body.clone())) {
        Ok(r) => r,
        Err(e) => return Verdict::Failed(format!("request: {e}")),
    };
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        // Read (and drop) the answer so that the connection can be used again.
        let _ = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_else(|_| Bytes::new());
        Ok::<_, String>(status)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(status)) if status.is_success() => Verdict::Delivered,
        Ok(Ok(status)) if status.is_server_error() => {
            Verdict::Failed(format!("HTTP {}", status.as_u16()))
        }
        Ok(Ok(status)) => Verdict::Rejected(status.as_u16()),
        Ok(Err(e)) => Verdict::Failed(format!("unreachable: {e}")),
        Err(_) => Verdict::Failed(format!("no answer within {timeout:?}")),
    }
}

/// An event given up: to the dead-letter stream through the relay when Redis is
/// configured, else only logged (and counted either way).
fn dead_letter(shared: &Shared, endpoint: &Endpoint, event: &Event, attempts: u32, reason: &str) {
    let Some(relay) = &shared.relay else {
        tracing::warn!(endpoint = %endpoint.url, id = %event.id, event = event.name, attempts, reason,
            "webhook event given up (no Redis for the dead letter)");
        return;
    };
    let fields = vec![
        ("id", event.id.to_string()),
        ("type", event.name.to_string()),
        ("endpoint", endpoint.url.clone()),
        ("attempts", attempts.to_string()),
        ("reason", reason.to_string()),
        ("ts", crate::auth::unix_ms().to_string()),
        ("body", String::from_utf8_lossy(&event.body).into_owned()),
    ];
    let queued = relay.push(Out::DeadLetter { fields });
    if queued {
        endpoint.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }
    tracing::warn!(endpoint = %endpoint.url, id = %event.id, event = event.name, attempts, reason, queued,
        "webhook event given up: dead-lettered");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_doubling_cap() {
        let d = Delivery {
            timeout: Duration::from_secs(1),
            attempts: 10,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(700),
            queue: 1,
            max_in_flight: 1,
            dead_maxlen: 0,
        };
        for _ in 0..200 {
            assert!(backoff(&d, 1) <= Duration::from_millis(100));
            assert!(backoff(&d, 3) <= Duration::from_millis(400));
            assert!(backoff(&d, 9) <= Duration::from_millis(700));
            assert!(backoff(&d, 40) <= Duration::from_millis(700));
        }
    }
}
