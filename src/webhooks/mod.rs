//! Webhooks (docs/webhooks.md): events POSTed to the configured endpoints, signed, retried
//! with exponential backoff and full jitter on 5xx answers, timeouts and network errors,
//! never retried after a 4xx, and dead-lettered to Redis when given up.
//!
//! The events come through `route::webhook_queue`, one bounded queue per endpoint that
//! nobody waits on; this service, on the control thread, drains each queue with at most
//! `webhook_max_in_flight` deliveries under way per endpoint. Delivery is at least once
//! while the hub runs: an event is posted again until a 2xx answer (a receiver may see
//! it twice, with the same `id`), and what is still queued when the hub stops is lost.

mod deliver;
mod traced;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::route::webhook_queue::Event;
use crate::shared::Shared;

/// Keep-alive connections to a receiver idle this long are closed.
const IDLE: Duration = Duration::from_secs(60);

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Starts one delivery loop per endpoint; returns at once.
pub async fn run(shared: Arc<Shared>) {
    let Some(hooks) = shared.webhooks.clone() else {
        return;
    };
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build(connector());
    for (index, endpoint) in hooks.endpoints.iter().enumerate() {
        if let Some(rx) = endpoint.take_receiver() {
            tokio::spawn(drain(shared.clone(), index, rx, client.clone()));
        }
    }
}

/// One endpoint's loop: each event is delivered by its own task, at most
/// `webhook_max_in_flight` at once; the rest wait in the endpoint's queue.
async fn drain(
    shared: Arc<Shared>,
    index: usize,
    mut rx: tokio::sync::mpsc::Receiver<Arc<Event>>,
    client: HttpClient,
) {
    let Some(hooks) = shared.webhooks.as_ref() else {
        return;
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(hooks.delivery.max_in_flight));
    while let Some(event) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (shared, client) = (shared.clone(), client.clone());
        tokio::spawn(async move {
            deliver::deliver(&shared, index, &client, &event).await;
            drop(permit);
        });
    }
}

/// `http://`, or `https://` verified against the system's roots.
fn connector() -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let builder = match HttpsConnectorBuilder::new().with_native_roots() {
        Ok(native) => native,
        Err(e) => {
            // http:// receivers still work; https:// ones fail their handshakes (retried).
            tracing::warn!(error = %e, "webhooks: no system TLS roots; https receivers fail");
            let tls = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            HttpsConnectorBuilder::new().with_tls_config(tls)
        }
    };
    builder.https_or_http().enable_http1().wrap_connector(http)
}
