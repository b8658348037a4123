//! A delivery's span (`CLIENT` kind), from the first attempt to the last: the event, its
//! id, the endpoint, the channel where the event has one, the attempts and the outcome.
//! Its context goes to the receiver as the `traceparent` header. Only when traces are on.

use crate::route::webhook_queue::Event;
use crate::shared::Shared;
use crate::telemetry::{KeyValue, Kind, Span};

pub(super) fn start(shared: &Shared, url: &str, event: &Event) -> Option<Span> {
    let traces = shared.traces.as_ref()?;
    let mut attributes = vec![
        KeyValue::new("ringhub.webhook.event", event.name),
        KeyValue::new("ringhub.webhook.id", event.id.to_string()),
        KeyValue::new("url.full", url.to_owned()),
    ];
    if let Some(channel) = channel(&event.body) {
        attributes.push(KeyValue::new("ringhub.channel", channel));
    }
    Some(traces.start("webhook delivery", Kind::Client, None, attributes))
}

pub(super) fn end(span: Option<Span>, attempts: u32, outcome: &'static str, why: Option<&str>) {
    let Some(mut span) = span else { return };
    span.set(KeyValue::new(
        "ringhub.webhook.attempts",
        i64::from(attempts),
    ));
    span.set(KeyValue::new("ringhub.webhook.outcome", outcome));
    if let Some(why) = why {
        span.fail(why.to_owned());
    }
}

/// The event's `data.channel` (presence and publication events).
fn channel(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        channel: Option<String>,
    }
    serde_json::from_slice::<Envelope>(body).ok()?.data.channel
}
