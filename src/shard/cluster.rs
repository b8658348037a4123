//! A shard's side of the relay: publications and direct messages leave for the other
//! instances, client `event`s and publications on `ingress` namespaces go to the ingress
//! stream (acknowledged only once Redis has them), session events are recorded, and
//! presence queries ask the other instances too. Everything goes through the relay's
//! bounded queue: a shard never waits for Redis.

use super::core::Core;
use crate::protocol::{self, ErrorCode, Request};
use crate::route::relay_queue::{IngressAck, Out};
use crate::route::webhook_queue;

/// Longest event name.
const MAX_EVENT: usize = 128;

impl Core {
    /// `event`: appended to the ingress stream, `ack` once Redis has it; `unavailable`
    /// while Redis is away (never silently dropped).
    pub(super) fn on_client_event(&mut self, key: usize, req: &Request<'_>) {
        let id = req.id;
        let (Some(event), Some(data)) = (req.event.as_deref(), req.data) else {
            return self.send(
                key,
                protocol::error(id, ErrorCode::BadRequest, "event and data are required"),
            );
        };
        if event.is_empty() || event.len() > MAX_EVENT {
            return self.send(
                key,
                protocol::error(id, ErrorCode::BadRequest, "event must be 1..128 bytes"),
            );
        }
        let fields = vec![
            ("type", "event".to_string()),
            ("event", event.to_string()),
            ("data", data.get().to_string()),
        ];
        self.ingress(key, req, fields);
    }

    /// A publication on an `ingress` namespace: to the stream instead of the subscribers.
    pub(super) fn ingress_publication(
        &mut self,
        key: usize,
        req: &Request<'_>,
        channel: &str,
        data: &str,
    ) {
        let fields = vec![
            ("type", "publish".to_string()),
            ("channel", channel.to_string()),
            ("data", data.to_string()),
        ];
        self.ingress(key, req, fields);
    }

    fn ingress(&mut self, key: usize, req: &Request<'_>, mut fields: Vec<(&'static str, String)>) {
        let id = req.id;
        let up = self.shared.relay.as_ref().is_some_and(|r| r.is_up());
        if !up {
            return self.send(
                key,
                protocol::error(
                    id,
                    ErrorCode::Unavailable,
                    "the ingress stream is unavailable (Redis is not reachable)",
                ),
            );
        }
        let conn = self.conns[key].id;
        let correlation = match req.correlation_id.as_deref() {
            Some(c) if !c.is_empty() && c.len() <= 128 => c.to_string(),
            _ => format!(
                "{conn:x}-{}",
                id.map_or_else(|| "0".into(), |i| i.to_string())
            ),
        };
        self.enrich(key, &mut fields, correlation);
        let ack = IngressAck {
            shard: self.index,
            key,
            conn,
            id,
        };
        let relay = self.shared.relay.as_ref().expect("checked above");
        if !relay.push(Out::Ingress {
            fields,
            ack: Some(ack),
        }) {
            self.send(
                key,
                protocol::error(
                    id,
                    ErrorCode::Unavailable,
                    "the ingress queue is full; retry",
                ),
            );
        }
    }

    /// The fields every ingress entry carries.
    fn enrich(&self, key: usize, fields: &mut Vec<(&'static str, String)>, correlation: String) {
        let conn = &self.conns[key];
        let user = conn.phase.session().map_or("", |s| &*s.user);
        fields.push(("user", user.to_string()));
        fields.push(("conn", format!("{:x}", conn.id)));
        fields.push(("instance", self.shared.instance.clone()));
        fields.push(("client", conn.client.as_deref().unwrap_or("").to_string()));
        fields.push(("ts", crate::auth::unix_ms().to_string()));
        fields.push(("correlation_id", correlation));
    }

    /// The relay's answer for an ingress append.
    pub fn ingress_done(&mut self, key: usize, conn: u64, id: Option<u64>, ok: bool) {
        if self.conns.get(key).is_none_or(|c| c.id != conn) {
            return;
        }
        if ok {
            if id.is_some() {
                self.send(key, protocol::reply(id, "ack", None));
            }
        } else {
            self.send(
                key,
                protocol::error(
                    id,
                    ErrorCode::Unavailable,
                    "the ingress stream is unavailable (Redis is not reachable)",
                ),
            );
        }
    }

    /// `session.started` / `session.ended`, to the ingress stream and the webhooks, fire
    /// and forget (counted when dropped).
    pub(super) fn session_event(&self, key: usize, started: bool) {
        self.session_webhook(key, started);
        let Some(relay) = &self.shared.relay else {
            return;
        };
        let conn = &self.conns[key];
        let mut fields = vec![(
            "type",
            if started {
                "session.started"
            } else {
                "session.ended"
            }
            .to_string(),
        )];
        if !started {
            fields.push((
                "duration_ms",
                conn.accepted_at.elapsed().as_millis().to_string(),
            ));
            fields.push(("code", conn.close_code.unwrap_or(1006).to_string()));
        }
        let correlation = conn
            .cause
            .as_deref()
            .map_or_else(|| format!("{:x}", conn.id), str::to_string);
        self.enrich(key, &mut fields, correlation);
        relay.push(Out::Ingress { fields, ack: None });
    }

    fn session_webhook(&self, key: usize, started: bool) {
        if self.shared.webhooks.is_none() {
            return;
        }
        let conn = &self.conns[key];
        let id = format!("{:x}", conn.id);
        let session = webhook_queue::Session {
            user: conn.phase.session().map_or("", |s| &*s.user),
            conn: &id,
            client: conn.client.as_deref().unwrap_or(""),
            correlation_id: conn.cause.as_deref().unwrap_or(&id),
            duration_ms: (!started).then(|| conn.accepted_at.elapsed().as_millis() as u64),
            code: (!started).then(|| conn.close_code.unwrap_or(1006)),
        };
        webhook_queue::session(&self.shared, started, &session);
    }

    /// A user's first (or last) connection on this instance joined (or left) a channel: the
    /// relay decides, in Redis, whether that is the user's first (last) in the cluster, and
    /// announces it. False when there is no relay to ask (the shard announces it itself).
    pub(super) fn relay_transition(
        &self,
        channel: &str,
        user: &str,
        info: &str,
        joined: bool,
    ) -> bool {
        let Some(relay) = &self.shared.relay else {
            return false;
        };
        relay.is_up()
            && relay.push(Out::Transition {
                channel: channel.into(),
                user: user.into(),
                info: info.into(),
                joined,
            })
    }

    /// Asks the other instances for their part of a presence query; true when asked (the
    /// part arrives as one more `PresencePart`).
    pub(super) fn presence_remote(&self, channel: &str, query: u64) -> bool {
        let Some(relay) = &self.shared.relay else {
            return false;
        };
        let has_peers = !relay
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        has_peers
            && relay.is_up()
            && relay.push(Out::Presence {
                channel: channel.into(),
                shard: self.index,
                query,
            })
    }
}
