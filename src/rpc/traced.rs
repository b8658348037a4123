//! A call's span (`CLIENT` kind): `rpc`, `subscribe proxy` or `publish proxy`, the child of
//! the client's `traceparent` when its frame had a valid one. Its context goes to the
//! backend as the `traceparent` header. Built only when traces are on (`Call::trace`).

use super::answer::Outcome;
use crate::auth::opaque::RETRY_LATER;
use crate::protocol::ErrorCode;
use crate::route::rpc_queue::{Call, Purpose};
use crate::shared::Shared;
use crate::telemetry::{KeyValue, Kind, Span};

pub(super) fn start(shared: &Shared, call: &Call) -> Option<Span> {
    let traces = shared.traces.as_ref()?;
    let trace = call.trace.as_ref()?;
    let (name, channel) = match &call.purpose {
        Purpose::Rpc => ("rpc", None),
        Purpose::Subscribe { channel, .. } => ("subscribe proxy", Some(channel)),
        Purpose::Publish { channel, .. } => ("publish proxy", Some(channel)),
        Purpose::Connect { .. } => ("connect proxy", None),
    };
    let mut attributes = vec![
        KeyValue::new("ringhub.backend", call.url.to_string()),
        KeyValue::new("ringhub.request_id", call.caller.request_id.to_string()),
        KeyValue::new("ringhub.user", call.caller.user.to_string()),
    ];
    if let Some(method) = &trace.method {
        attributes.push(KeyValue::new("rpc.method", method.to_string()));
    }
    if let Some(channel) = channel {
        attributes.push(KeyValue::new("ringhub.channel", channel.to_string()));
    }
    Some(traces.start(name, Kind::Client, trace.parent, attributes))
}

/// Ends the span with what became of the call.
pub(super) fn end(span: Option<Span>, outcome: Result<&Outcome, &'static str>) {
    let Some(mut span) = span else { return };
    let (what, code) = match outcome {
        Ok(Outcome::Data { .. }) => ("answered", None),
        Ok(Outcome::Refused(code, ..)) => ("refused", Some(*code)),
        Ok(Outcome::Failed(code, message)) => {
            span.fail(message.clone());
            ("failed", Some(*code))
        }
        Ok(Outcome::Connect(Ok(_))) => ("answered", None),
        Ok(Outcome::Connect(Err(refusal))) if refusal.close_code() != RETRY_LATER => {
            ("refused", Some(ErrorCode::Forbidden))
        }
        Ok(Outcome::Connect(Err(refusal))) => {
            span.fail(refusal.reason().to_string());
            ("failed", Some(ErrorCode::Unavailable))
        }
        Ok(Outcome::Raw(_)) => ("answered", None),
        Err(what) => {
            span.fail(what);
            (what, Some(ErrorCode::Unavailable))
        }
    };
    span.set(KeyValue::new("ringhub.rpc.outcome", what));
    if let Some(code) = code {
        span.set(KeyValue::new("ringhub.rpc.error_code", code.as_str()));
    }
}
