//! The rpc proxy's counters and its backends' circuit breakers, and the token store's
//! counters, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::encode::counter;
use crate::route::rpc_queue::{RpcQueue, BREAKER_STATES};

pub(super) fn encode(e: &mut DescriptorEncoder, rpc: &RpcQueue) -> std::fmt::Result {
    let s = &rpc.stats;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let totals = [
        ("ringhub_rpc_calls", "rpc calls queued for a backend", &s.calls),
        (
            "ringhub_rpc_answered",
            "rpc calls the backend answered with data or an error of its own",
            &s.answered,
        ),
        (
            "ringhub_rpc_failed",
            "rpc calls without a usable answer: unreachable, HTTP error, malformed, timeout, breaker open",
            &s.failed,
        ),
        (
            "ringhub_rpc_refused",
            "rpc calls refused at once: too many waiting",
            &s.refused,
        ),
        (
            "ringhub_rpc_cancelled",
            "rpc calls that stopped waiting because the client disconnected",
            &s.cancelled,
        ),
    ];
    for (name, help, value) in totals {
        counter(e, name, help, n(value))?;
    }
    {
        let help = "The backend's circuit breaker: 0 closed, 1 open, 2 half-open";
        let mut g =
            e.encode_descriptor("ringhub_rpc_breaker_state", help, None, MetricType::Gauge)?;
        for b in &rpc.breakers {
            let state = BREAKER_STATES
                .iter()
                .position(|&s| s == b.state())
                .unwrap_or(0);
            ConstGauge::new(state as i64)
                .encode(g.encode_family(&[("backend", b.url.as_str())])?)?;
        }
    }
    {
        let help = "Transitions of the backend's circuit breaker, by the state entered";
        let mut c = e.encode_descriptor(
            "ringhub_rpc_breaker_transitions",
            help,
            None,
            MetricType::Counter,
        )?;
        for b in &rpc.breakers {
            for (i, state) in BREAKER_STATES.iter().enumerate() {
                let labels = [("backend", b.url.as_str()), ("state", state.name())];
                ConstCounter::new(n(&b.transitions[i])).encode(c.encode_family(&labels)?)?;
            }
        }
    }
    {
        let help = "How long the backend took to answer an rpc or proxy call, from post to answer";
        let mut h = e.encode_descriptor(
            "ringhub_rpc_duration_seconds",
            help,
            None,
            MetricType::Histogram,
        )?;
        for b in &rpc.breakers {
            b.latency
                .encode(h.encode_family(&[("backend", b.url.as_str())])?)?;
        }
    }
    let help = "rpc calls answered at once because the backend's breaker was open";
    let mut c = e.encode_descriptor(
        "ringhub_rpc_breaker_rejected",
        help,
        None,
        MetricType::Counter,
    )?;
    for b in &rpc.breakers {
        ConstCounter::new(n(&b.rejected))
            .encode(c.encode_family(&[("backend", b.url.as_str())])?)?;
    }
    Ok(())
}

/// The token store's counters (`token_store = "redis"`).
pub(super) fn encode_tokens(
    e: &mut DescriptorEncoder,
    tokens: &crate::route::token_queue::TokenQueue,
) -> std::fmt::Result {
    let s = &tokens.stats;
    let totals = [
        (
            "ringhub_token_store_lookups",
            "Opaque tokens looked up in Redis",
            &s.lookups,
        ),
        (
            "ringhub_token_store_found",
            "Lookups that found a valid token",
            &s.found,
        ),
        (
            "ringhub_token_store_refused",
            "Lookups of a missing, expired or malformed key",
            &s.refused,
        ),
        (
            "ringhub_token_store_failed",
            "Lookups Redis did not answer, or refused at once (queue full)",
            &s.failed,
        ),
        (
            "ringhub_token_store_cached",
            "Opaque tokens found in a shard's cache, without a lookup",
            &s.cached,
        ),
    ];
    for (name, help, value) in totals {
        counter(e, name, help, value.load(Ordering::Relaxed))?;
    }
    Ok(())
}
