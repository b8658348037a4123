//! The Prometheus exposition: the shards' counters merged at scrape time, per-shard gauges,
//! latency quantiles, and the control plane's API counters, through `prometheus-client`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;

use super::{Latency, ShardStats, AUTH_REASONS, CLOSE_CODES, UPGRADE_REFUSALS};
use crate::shared::Shared;

/// Labels of the API request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub endpoint: String,
    pub status: u16,
}

/// Labels of the per-key request counter: the key's name, never the key or its digest.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    pub key: String,
    pub status: u16,
}

/// The control plane's registry: the hub collector plus the API counters.
pub struct Registry {
    registry: prometheus_client::registry::Registry,
    pub api_requests: Family<ApiLabels, Counter>,
    pub api_key_requests: Family<KeyLabels, Counter>,
}

impl Registry {
    pub fn new(shared: Arc<Shared>) -> Registry {
        let mut registry = prometheus_client::registry::Registry::default();
        let api_requests = Family::<ApiLabels, Counter>::default();
        registry.register(
            "ringhub_api_requests",
            "Server API requests by endpoint and HTTP status",
            api_requests.clone(),
        );
        let api_key_requests = Family::<KeyLabels, Counter>::default();
        registry.register(
            "ringhub_api_key_requests",
            "Server API requests that presented a known key, by the key's name and HTTP status",
            api_key_requests.clone(),
        );
        registry.register_collector(Box::new(HubCollector(shared)));
        Registry {
            registry,
            api_requests,
            api_key_requests,
        }
    }

    /// Adds a metric that its owner keeps up to date (a service's own counters).
    pub fn register(
        &mut self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry.register(name, help, metric);
    }
}

/// The text exposition of everything in `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry.registry);
    out
}

struct HubCollector(Arc<Shared>);

impl std::fmt::Debug for HubCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HubCollector")
    }
}

type Field = fn(&ShardStats) -> &AtomicU64;

const COUNTERS: [(&str, &str, Field); 16] = [
    (
        "ringhub_connects",
        "Connections authenticated and opened",
        |s| &s.connects,
    ),
    ("ringhub_frames_in", "WebSocket frames received", |s| {
        &s.frames_in
    }),
    ("ringhub_bytes_in", "Bytes read from clients", |s| {
        &s.bytes_in
    }),
    ("ringhub_frames_out", "Frames queued to clients", |s| {
        &s.frames_out
    }),
    ("ringhub_bytes_out", "Bytes written to clients", |s| {
        &s.bytes_out
    }),
    (
        "ringhub_deliveries",
        "Publications and direct messages queued to a connection",
        |s| &s.deliveries,
    ),
    (
        "ringhub_transcodes",
        "Frames made again in another encoding (protobuf), once per frame, encoding and shard",
        |s| &s.transcodes,
    ),
    (
        "ringhub_delta_deliveries",
        "Of the deliveries, those sent as a Fossil delta against the previous publication",
        |s| &s.delta_deliveries,
    ),
    (
        "ringhub_slow_consumer_closes",
        "Connections closed with 4009 (send queue over its limit)",
        |s| &s.slow_consumers,
    ),
    (
        "ringhub_conflated_publications",
        "Queued publications replaced by a newer one of their channel (conflate namespaces)",
        |s| &s.conflated,
    ),
    (
        "ringhub_history_gaps_recovered",
        "Gaps in a history channel's offsets on a shard, filled from the history",
        |s| &s.gaps_recovered,
    ),
    (
        "ringhub_history_gaps_lost",
        "Gaps that could not be filled: the channel's local subscribers were unsubscribed",
        |s| &s.gaps_lost,
    ),
    (
        "ringhub_rate_limited_frames",
        "Client frames refused by the per-user rate limit",
        |s| &s.rate_limited,
    ),
    (
        "ringhub_send_queue_bytes_queued",
        "Bytes ever queued for clients",
        |s| &s.bytes_queued,
    ),
    (
        "ringhub_send_queue_bytes_discarded",
        "Queued bytes dropped unwritten (slow consumers, broken sockets)",
        |s| &s.bytes_discarded,
    ),
    (
        "ringhub_tls_errors",
        "TLS sessions ended by an error: a failed handshake, plaintext on a TLS port, a bad record",
        |s| &s.tls_errors,
    ),
];

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &self.0;
        let m = &shared.metrics;
        for (name, help, field) in COUNTERS {
            counter(&mut encoder, name, help, m.sum(field))?;
        }
        let mut e = encoder.encode_descriptor(
            "ringhub_disconnects",
            "Connections closed, by close code (1006: dropped without a close frame)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for i in 0..=CLOSE_CODES.len() {
            let code = CLOSE_CODES.get(i).map_or("other".into(), |c| c.to_string());
            let n = m.sum(|s| &s.closes[i]);
            ConstCounter::new(n).encode(e.encode_family(&[("code", code)])?)?;
        }
        let mut e = encoder.encode_descriptor(
            "ringhub_auth_failures",
            "Authentications refused, by reason",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (i, reason) in AUTH_REASONS.iter().enumerate() {
            let n = m.sum(|s| &s.auth_failures[i]);
            ConstCounter::new(n).encode(e.encode_family(&[("reason", *reason)])?)?;
        }
        let mut e = encoder.encode_descriptor(
            "ringhub_upgrade_refusals",
            "WebSocket upgrades refused before the token, by reason",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (i, reason) in UPGRADE_REFUSALS.iter().enumerate() {
            let n = m.sum(|s| &s.upgrade_refusals[i]);
            ConstCounter::new(n).encode(e.encode_family(&[("reason", *reason)])?)?;
        }
        let n = shared.shards();
        per_shard(
            &mut encoder,
            "ringhub_connections",
            "Open connections per shard",
            n,
            |i| shared.shard_connections[i].load(Ordering::Relaxed) as i64,
        )?;
        per_shard(
            &mut encoder,
            "ringhub_inbox_depth",
            "Messages waiting in each shard's inbox",
            n,
            |i| shared.inboxes[i].len() as i64,
        )?;
        per_shard(
            &mut encoder,
            "ringhub_send_queue_bytes",
            "Bytes queued for clients and not yet written, per shard",
            n,
            |i| m.shards[i].queue_depth() as i64,
        )?;
        quantiles(
            &mut encoder,
            "ringhub_connect_to_welcome_seconds",
            "From TCP accept to the welcome frame",
            &m.connect_to_welcome,
        )?;
        quantiles(
            &mut encoder,
            "ringhub_api_publish_to_write_seconds",
            "From a server API publish to its write on each shard with subscribers",
            &m.publish_to_write,
        )?;
        if let Some(relay) = &shared.relay {
            relay_metrics(&mut encoder, relay)?;
        }
        if let Some(rpc) = &shared.rpc {
            super::rpc::encode(&mut encoder, rpc)?;
        }
        if let Some(tokens) = &shared.tokens {
            super::rpc::encode_tokens(&mut encoder, tokens)?;
        }
        if let Some(hooks) = &shared.webhooks {
            super::webhooks::encode(&mut encoder, hooks)?;
        }
        if let Some(certs) = m.tls.get() {
            tls_reloads(&mut encoder, certs)?;
        }
        gauge(
            &mut encoder,
            "ringhub_uptime_seconds",
            "Seconds since the hub started",
            m.started.elapsed().as_secs_f64(),
        )?;
        gauge(
            &mut encoder,
            "ringhub_draining",
            "1 while the hub drains",
            shared.is_draining() as u8 as f64,
        )?;
        gauge(
            &mut encoder,
            "ringhub_ready",
            "1 while /ready answers 200: started, every shard serving, not draining",
            shared.is_ready() as u8 as f64,
        )?;
        gauge(
            &mut encoder,
            "ringhub_shards_serving",
            "Shards serving, out of the configured count",
            shared.serving.load(Ordering::Acquire) as f64,
        )?;
        Ok(())
    }
}

pub(super) fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    n: u64,
) -> std::fmt::Result {
    let c = ConstCounter::new(n);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn tls_reloads(e: &mut DescriptorEncoder, certs: &[Arc<crate::tls::Certs>]) -> std::fmt::Result {
    let mut e = e.encode_descriptor(
        "ringhub_tls_reloads",
        "Certificate reloads by listener: ok (new handshakes use it), failed (the previous one kept)",
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for c in certs {
        for (result, n) in [("ok", &c.reloaded), ("failed", &c.failed)] {
            let n = n.load(Ordering::Relaxed);
            ConstCounter::new(n)
                .encode(e.encode_family(&[("listener", c.name), ("result", result)])?)?;
        }
    }
    Ok(())
}

pub(super) fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn per_shard(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    shards: usize,
    value: impl Fn(usize) -> i64,
) -> std::fmt::Result {
    let mut e = e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for shard in 0..shards {
        ConstGauge::new(value(shard)).encode(e.encode_family(&[("shard", shard.to_string())])?)?;
    }
    Ok(())
}

/// A latency histogram as quantile gauges (seconds) and a sample counter.
fn quantiles(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    latency: &Latency,
) -> std::fmt::Result {
    let h = latency.merged();
    {
        let mut q = e.encode_descriptor(
            name,
            help,
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for quantile in [0.5, 0.9, 0.99, 0.999, 1.0] {
            let secs = h.value_at_quantile(quantile) as f64 / 1e6;
            ConstGauge::new(secs)
                .encode(q.encode_family(&[("quantile", quantile.to_string())])?)?;
        }
    }
    let samples = format!("{}_samples", name.trim_end_matches("_seconds"));
    counter(
        e,
        &samples,
        "Samples in the latency quantiles above",
        h.len(),
    )
}

fn relay_metrics(
    e: &mut DescriptorEncoder,
    relay: &crate::route::relay_queue::RelayQueue,
) -> std::fmt::Result {
    let s = &relay.stats;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    gauge(
        e,
        "ringhub_relay_up",
        "1 while the relay is connected to Redis",
        relay.is_up() as u8 as f64,
    )?;
    gauge(
        e,
        "ringhub_relay_queue_depth",
        "Messages waiting to be published to Redis",
        relay.queue_depth() as f64,
    )?;
    gauge(
        e,
        "ringhub_relay_subscriptions",
        "Channel topics subscribed on Redis",
        n(&s.subscriptions) as f64,
    )?;
    let peers = relay.peers.lock().unwrap_or_else(|e| e.into_inner()).len();
    gauge(
        e,
        "ringhub_relay_peers",
        "Other live instances seen through Redis",
        peers as f64,
    )?;
    counter(
        e,
        "ringhub_relay_reconnects",
        "Times the relay lost Redis and connected again",
        n(&s.reconnects),
    )?;
    counter(
        e,
        "ringhub_relay_published",
        "Relay messages published to Redis",
        n(&s.published),
    )?;
    counter(
        e,
        "ringhub_relay_publish_failures",
        "Relay messages lost because a publish to Redis failed",
        n(&s.publish_failures),
    )?;
    counter(
        e,
        "ringhub_relay_dropped",
        "Messages dropped: relay queue full, or Redis unreachable",
        n(&s.dropped),
    )?;
    counter(
        e,
        "ringhub_relay_received",
        "Messages received from Redis",
        n(&s.received),
    )?;
    counter(
        e,
        "ringhub_relay_malformed",
        "Malformed relay messages ignored",
        n(&s.malformed),
    )?;
    counter(
        e,
        "ringhub_egress_ops",
        "Egress operations applied",
        n(&s.egress),
    )?;
    counter(
        e,
        "ringhub_egress_malformed",
        "Egress messages ignored as malformed or refused",
        n(&s.egress_malformed),
    )?;
    counter(
        e,
        "ringhub_ingress_entries",
        "Entries appended to the ingress stream",
        n(&s.ingress),
    )?;
    counter(
        e,
        "ringhub_ingress_failures",
        "Ingress entries Redis did not take",
        n(&s.ingress_failures),
    )
}
