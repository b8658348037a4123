//! The server API's spans: one per call (`SERVER` kind), named `<METHOD> <route>`, the child
//! of the caller's `traceparent` header when it has a valid one. Built only when traces
//! are on; health, readiness and metrics are not traced.

use std::borrow::Cow;
use std::time::SystemTime;

use hyper::Method;

use super::endpoint::Endpoint;
use crate::telemetry::{KeyValue, Kind, TraceParent, Traces};

/// What is kept from a call's start until its span is made at its end.
pub(super) struct Started {
    parent: Option<TraceParent>,
    at: SystemTime,
}

/// Reads the caller's `traceparent` (when traces are on).
pub(super) fn start(traces: Option<&Traces>, headers: &hyper::HeaderMap) -> Option<Started> {
    traces?;
    let parent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    Some(Started {
        parent,
        at: SystemTime::now(),
    })
}

/// The call's span, from its start to now.
pub(super) struct Call<'a> {
    pub method: &'a Method,
    pub endpoint: Endpoint,
    pub path: &'a str,
    pub body: &'a [u8],
    pub status: u16,
    pub correlation: &'a str,
}

pub(super) fn finish(traces: &Traces, started: Started, call: Call<'_>) {
    if !call.endpoint.is_api() {
        return;
    }
    let route = call.endpoint.route();
    let mut attributes = vec![
        KeyValue::new("http.request.method", call.method.to_string()),
        KeyValue::new("http.route", route),
        KeyValue::new("url.path", call.path.to_owned()),
        KeyValue::new("http.response.status_code", i64::from(call.status)),
        KeyValue::new("ringhub.correlation_id", call.correlation.to_owned()),
    ];
    if let Some(channel) = channel(call.endpoint, call.path, call.body) {
        attributes.push(KeyValue::new("ringhub.channel", channel.into_owned()));
    }
    let name = format!("{} {route}", call.method);
    let mut span = traces.start_at(name, Kind::Server, started.parent, attributes, started.at);
    if call.status >= 500 {
        span.fail(format!("HTTP {}", call.status));
    }
}

/// The channel a call names: in the path (presence, history) or the body's `channel`.
fn channel<'a>(endpoint: Endpoint, path: &'a str, body: &'a [u8]) -> Option<Cow<'a, str>> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        channel: Option<Cow<'a, str>>,
    }
    match endpoint {
        Endpoint::Presence | Endpoint::History => {
            let prefix = endpoint.route().strip_suffix("{channel}")?;
            let raw = path.strip_prefix(prefix)?;
            percent_encoding::percent_decode_str(raw).decode_utf8().ok()
        }
        _ if body.first() == Some(&b'{') => serde_json::from_slice::<Named<'a>>(body).ok()?.channel,
        _ => None,
    }
}
