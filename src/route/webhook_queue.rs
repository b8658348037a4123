//! The queues of webhook events, one per endpoint, from whoever sees something happen (the
//! shards, the server API, the relay, the rpc breakers) to the webhook service
//! (`crate::webhooks`, on the control thread), which POSTs them. An event is encoded once,
//! when at least one endpoint takes its kind, and queued to each such endpoint without
//! waiting: a full queue drops it for that endpoint (counted). No shard waits on a webhook.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::config::{Config, Delivery, EventKind};
use crate::shared::Shared;

/// One event, encoded: the same body goes to every endpoint (and every attempt).
pub struct Event {
    /// Unique (128 random bits, hex): the receiver's idempotency key.
    pub id: Box<str>,
    /// `session.started`, `presence.join`, `publication`, `rpc.breaker`...
    pub name: &'static str,
    /// The JSON POSTed.
    pub body: Bytes,
}

/// An endpoint's counters, for `/metrics`.
#[derive(Default)]
pub struct EndpointStats {
    pub queued: AtomicU64,
    /// Not queued: the endpoint's queue was full.
    pub dropped: AtomicU64,
    /// Answered 2xx.
    pub delivered: AtomicU64,
    /// Attempts after the first (after a 5xx, a timeout or a network error).
    pub retries: AtomicU64,
    /// Answered 4xx (or another non-2xx, non-5xx status): given up without retrying.
    pub rejected: AtomicU64,
    /// Given up after the last attempt.
    pub failed: AtomicU64,
    /// Given up events (rejected or failed) handed to the relay for the dead-letter stream.
    pub dead_lettered: AtomicU64,
}

/// One configured endpoint and its queue.
pub struct Endpoint {
    pub url: String,
    pub uri: hyper::Uri,
    mask: u8,
    pub secret: Option<Box<[u8]>>,
    tx: mpsc::Sender<Arc<Event>>,
    rx: Mutex<Option<mpsc::Receiver<Arc<Event>>>>,
    pub stats: EndpointStats,
}

impl Endpoint {
    /// The receiving end, for the webhook service (taken once).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Arc<Event>>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Events waiting in the queue.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Every endpoint (present when `[[webhooks]]` names one).
pub struct Webhooks {
    pub endpoints: Vec<Endpoint>,
    /// The kinds some endpoint takes.
    mask: u8,
    pub instance: Box<str>,
    pub delivery: Delivery,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    id: &'a str,
    #[serde(rename = "type")]
    name: &'a str,
    /// Unix milliseconds, when the event happened.
    ts: u64,
    instance: &'a str,
    data: T,
}

impl Webhooks {
    /// None without endpoints. The config has been validated, so its URLs parse.
    pub fn new(config: &Config, instance: &str) -> Option<Webhooks> {
        let delivery = config.webhook_delivery();
        let endpoints: Vec<Endpoint> = config
            .webhooks
            .iter()
            .filter_map(|hook| {
                let uri = hook.url.parse().ok()?;
                let (tx, rx) = mpsc::channel(delivery.queue.max(1));
                Some(Endpoint {
                    url: hook.url.clone(),
                    uri,
                    mask: hook.mask(),
                    secret: hook.secret.as_deref().map(|s| s.as_bytes().into()),
                    tx,
                    rx: Mutex::new(Some(rx)),
                    stats: EndpointStats::default(),
                })
            })
            .collect();
        if endpoints.is_empty() {
            return None;
        }
        Some(Webhooks {
            mask: endpoints.iter().fold(0, |m, e| m | e.mask),
            endpoints,
            instance: instance.into(),
            delivery,
        })
    }

    /// Does some endpoint take events of this kind?
    pub fn wants(&self, kind: EventKind) -> bool {
        self.mask & kind.bit() != 0
    }

    /// Encodes the event and queues it to every endpoint that takes its kind, without
    /// waiting.
    pub fn emit(&self, kind: EventKind, name: &'static str, data: &impl Serialize) {
        if !self.wants(kind) {
            return;
        }
        let id = format!("{:032x}", rand::random::<u128>());
        let envelope = Envelope {
            id: &id,
            name,
            ts: crate::auth::unix_ms(),
            instance: &self.instance,
            data,
        };
        let Ok(body) = serde_json::to_vec(&envelope) else {
            return;
        };
        let event = Arc::new(Event {
            id: id.into(),
            name,
            body: body.into(),
        });
        for endpoint in self.endpoints.iter().filter(|e| e.mask & kind.bit() != 0) {
            let counter = match endpoint.tx.try_send(event.clone()) {
                Ok(()) => &endpoint.stats.queued,
                Err(_) => &endpoint.stats.dropped,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `session.started` / `session.ended`: what is known of the connection.
#[derive(Serialize)]
pub struct Session<'a> {
    pub user: &'a str,
    /// The connection id of the client's `welcome` (hex).
    pub conn: &'a str,
    pub client: &'a str,
    /// Why the connection is there (a correlation id the client or the hub gave).
    pub correlation_id: &'a str,
    /// `session.ended` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `session.ended` only: the close code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// A session began or ended.
pub fn session(shared: &Shared, started: bool, session: &Session) {
    if let Some(hooks) = &shared.webhooks {
        let name = match started {
            true => "session.started",
            false => "session.ended",
        };
        hooks.emit(EventKind::Session, name, session);
    }
}

/// A user joined (their first connection subscribed) or left (their last one went) a
/// channel whose namespace announces it (`join_leave`). `info` is the user's JSON info.
pub fn presence(shared: &Shared, joined: bool, channel: &str, user: &str, info: &str) {
    #[derive(Serialize)]
    struct Presence<'a> {
        channel: &'a str,
        user: &'a str,
        info: Option<&'a RawValue>,
    }
    let Some(hooks) = &shared.webhooks else {
        return;
    };
    if !hooks.wants(EventKind::Presence) {
        return;
    }
    let name = match joined {
        true => "presence.join",
        false => "presence.leave",
    };
    let info = serde_json::from_str::<&RawValue>(info).ok();
    let event = Presence {
        channel,
        user,
        info,
    };
    hooks.emit(EventKind::Presence, name, &event);
}

/// A publication accepted on a channel whose namespace has `webhook = true`. `data` is the
/// publication's JSON; `from` its publisher (none from the server API).
pub fn publication(shared: &Shared, channel: &str, data: &str, from: Option<&str>) {
    #[derive(Serialize)]
    struct Publication<'a> {
        channel: &'a str,
        data: &'a RawValue,
        from: Option<&'a str>,
    }
    let Some(hooks) = &shared.webhooks else {
        return;
    };
    if !hooks.wants(EventKind::Publication) || !shared.config.namespace(channel).webhook {
        return;
    }
    let Ok(data) = serde_json::from_str::<&RawValue>(data) else {
        return;
    };
    let event = Publication {
        channel,
        data,
        from,
    };
    hooks.emit(EventKind::Publication, "publication", &event);
}

/// An rpc backend's circuit breaker entered `state` (`closed`, `open`, `half_open`).
pub fn breaker(hooks: &Webhooks, backend: &str, state: &str) {
    #[derive(Serialize)]
    struct Breaker<'a> {
        backend: &'a str,
        state: &'a str,
    }
    hooks.emit(
        EventKind::Breaker,
        "rpc.breaker",
        &Breaker { backend, state },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Webhook;

    fn hooks(queue: usize) -> Webhooks {
        let endpoint = |url: &str, events: Vec<EventKind>| Webhook {
            url: url.into(),
            events,
            secret: None,
        };
        let config = Config {
            webhooks: vec![
                endpoint("http://a/", vec![EventKind::Session]),
                endpoint("http://b/", EventKind::ALL.to_vec()),
            ],
            webhook_queue: queue,
            ..Config::default()
        };
        Webhooks::new(&config, "inst").unwrap()
    }

    #[test]
    fn an_event_goes_to_the_endpoints_of_its_kind_once_encoded() {
        let hooks = hooks(8);
        let mut a = hooks.endpoints[0].take_receiver().unwrap();
        let mut b = hooks.endpoints[1].take_receiver().unwrap();
        breaker(&hooks, "http://backend/", "open");
        assert!(a.try_recv().is_err(), "a takes only session events");
        let event = b.try_recv().unwrap();
        assert_eq!(event.name, "rpc.breaker");
        let body: serde_json::Value = serde_json::from_slice(&event.body).unwrap();
        assert_eq!(body["id"], &*event.id);
        assert_eq!(body["instance"], "inst");
        assert_eq!(body["data"]["state"], "open");

        let session = Session {
            user: "u",
            conn: "1f",
            client: "",
            correlation_id: "1f",
            duration_ms: None,
            code: None,
        };
        hooks.emit(EventKind::Session, "session.started", &session);
        let (ea, eb) = (a.try_recv().unwrap(), b.try_recv().unwrap());
        assert!(Arc::ptr_eq(&ea, &eb), "encoded once, shared");
        let body: serde_json::Value = serde_json::from_slice(&ea.body).unwrap();
        assert_eq!(
            body["data"],
            serde_json::json!({"user": "u", "conn": "1f", "client": "", "correlation_id": "1f"})
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let hooks = hooks(1);
        for _ in 0..3 {
            breaker(&hooks, "http://backend/", "open");
        }
        let stats = &hooks.endpoints[1].stats;
        assert_eq!(stats.queued.load(Ordering::Relaxed), 1);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(hooks.endpoints[1].depth(), 1);
        assert_eq!(hooks.endpoints[0].stats.dropped.load(Ordering::Relaxed), 0);
    }
}
