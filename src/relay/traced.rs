//! The relay's spans (`PRODUCER` kind), one per operation batch, never one per message:
//! `relay publish` (a batch's PUBLISH and ingress XADD pipeline), `relay sequence` (a
//! batch of history appends), `relay recover` and `relay history` (one stream read each).
//! A publish batch's span is the child of the first client `traceparent` among its
//! publications, linked to the others'. Only when traces are on: callers build the
//! attributes only then.

use crate::shared::Shared;
use crate::telemetry::{KeyValue, Span, TraceParent};

pub(super) fn start(
    shared: &Shared,
    name: &'static str,
    parents: &[TraceParent],
    mut attributes: Vec<KeyValue>,
) -> Option<Span> {
    let traces = shared.traces.as_ref()?;
    attributes.push(KeyValue::new("messaging.system", "redis"));
    Some(traces.start_batch(name, parents, attributes))
}

/// Ends the span with Redis's answer.
pub(super) fn end<T>(span: Option<Span>, result: &redis::RedisResult<T>) {
    if let (Some(mut span), Err(e)) = (span, result) {
        span.fail(e.to_string());
    }
}

/// Ends the span with a batch's answers, failed with the first error among them.
pub(super) fn end_all<T>(span: Option<Span>, results: &[redis::RedisResult<T>]) {
    if let (Some(mut span), Some(Err(e))) = (span, results.iter().find(|r| r.is_err())) {
        span.fail(e.to_string());
    }
}
