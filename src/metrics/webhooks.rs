//! The webhook endpoints' counters and queue depths, for `/metrics` (one series per
//! endpoint, labelled with its URL).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::route::webhook_queue::{EndpointStats, Webhooks};

type Field = fn(&EndpointStats) -> &AtomicU64;

const COUNTERS: [(&str, &str, Field); 7] = [
    (
        "ringhub_webhook_queued",
        "Webhook events queued for the endpoint",
        |s| &s.queued,
    ),
    (
        "ringhub_webhook_dropped",
        "Webhook events dropped: the endpoint's queue was full",
        |s| &s.dropped,
    ),
    (
        "ringhub_webhook_delivered",
        "Webhook events the endpoint answered with 2xx",
        |s| &s.delivered,
    ),
    (
        "ringhub_webhook_retries",
        "Webhook attempts after a 5xx, a timeout or a network error",
        |s| &s.retries,
    ),
    (
        "ringhub_webhook_rejected",
        "Webhook events the endpoint refused (4xx): not retried",
        |s| &s.rejected,
    ),
    (
        "ringhub_webhook_failed",
        "Webhook events given up after the last attempt",
        |s| &s.failed,
    ),
    (
        "ringhub_webhook_dead_lettered",
        "Webhook events given up and queued for the dead-letter stream in Redis",
        |s| &s.dead_lettered,
    ),
];

pub(super) fn encode(e: &mut DescriptorEncoder, hooks: &Webhooks) -> std::fmt::Result {
    for (name, help, field) in COUNTERS {
        let mut c = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        for endpoint in &hooks.endpoints {
            let n = field(&endpoint.stats).load(Ordering::Relaxed);
            ConstCounter::new(n)
                .encode(c.encode_family(&[("endpoint", endpoint.url.as_str())])?)?;
        }
    }
    let help = "Webhook events waiting in the endpoint's queue";
    let mut g = e.encode_descriptor("ringhub_webhook_queue", help, None, MetricType::Gauge)?;
    for endpoint in &hooks.endpoints {
        ConstGauge::new(endpoint.depth() as i64)
            .encode(g.encode_family(&[("endpoint", endpoint.url.as_str())])?)?;
    }
    Ok(())
}
