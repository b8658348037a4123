//! The client requests of `docs/protocol.md` §2 on an open connection, with the rate
//! limit and the malformed-request rule in front of them.

use std::time::Instant;

use super::conn::Session;
use super::connect::Credential;
use super::core::Core;
use super::fanout::Subscribed;
use super::state::Admission;
use crate::channel;
use crate::protocol::{self, proto, ErrorCode, Kind, Request, Status};
use crate::route::inbox::{AckTo, ConnRef, HistoryTo};
use crate::telemetry::TraceParent;

/// Consecutive malformed requests after which the connection is closed with 1008.
pub const MAX_MALFORMED: u32 = 10;

impl Core {
    /// Takes a token from the user's bucket. Over the limit, the request is refused with
    /// `rate_limited`; a user refused more than `burst` times within `SUSTAINED` is far
    /// over the limit, and the connection that crossed the line is closed with 4029.
    /// `id` reads the request's id, for the refusal.
    pub(super) fn within_rate(&mut self, key: usize, id: impl FnOnce() -> Option<u64>) -> bool {
        let Some(user) = self.conns[key].phase.open().map(|s| s.user.clone()) else {
            return false;
        };
        let Admission::Limited { wait, sustained } = self.users.admit(&user, Instant::now()) else {
            return true;
        };
        crate::metrics::local(|m| crate::metrics::bump(&m.rate_limited, 1));
        let id = id();
        self.send(
            key,
            protocol::rate_limited(id, wait.as_millis().max(1) as u64),
        );
        if sustained {
            self.close(key, 4029, "sustained rate-limit violation");
        }
        false
    }

    /// A request that could not be understood: an error frame, and 1008 when it keeps up.
    pub(super) fn malformed(&mut self, key: usize, id: Option<u64>, why: &str) {
        self.send(key, protocol::error(id, ErrorCode::BadRequest, why));
        let conn = &mut self.conns[key];
        conn.malformed += 1;
        if conn.malformed >= MAX_MALFORMED {
            self.close(key, 1008, "repeated malformed frames");
        }
    }

    fn reply(&mut self, key: usize, id: Option<u64>, kind: &str, channel: Option<&str>) {
        if id.is_some() {
            self.send(key, protocol::reply(id, kind, channel));
        }
    }

    /// A text frame's request (JSON connections).
    pub(super) fn on_request(&mut self, key: usize, text: &str) {
        match protocol::decode(text) {
            Ok(req) => self.on_decoded(key, &req),
            Err((id, why)) => self.malformed(key, id, &why),
        }
    }

    /// A binary frame's request (proto connections): the same `Request`, the same path.
    pub(super) fn on_proto_request(&mut self, key: usize, payload: &[u8]) {
        let frame = match proto::decode_frame(payload) {
            Ok(f) => f,
            Err(why) => return self.malformed(key, None, &why),
        };
        match proto::request(&frame) {
            Ok(req) => self.on_decoded(key, &req),
            Err((id, why)) => self.malformed(key, id, &why),
        }
    }

    fn on_decoded(&mut self, key: usize, req: &Request<'_>) {
        let id = req.id;
        if req.kind == Kind::Unknown {
            return self.malformed(key, id, "unknown type");
        }
        // Requests come from open connections only (`frames.rs`); the session is theirs.
        let Some(session) = self.conns[key].phase.open().cloned() else {
            return;
        };
        self.conns[key].malformed = 0;
        match req.kind {
            Kind::Subscribe => self.on_subscribe(key, &session, req),
            Kind::Unsubscribe => match req.channel.as_deref() {
                Some(ch) => {
                    self.unsubscribe(key, ch);
                    self.reply(key, id, "unsubscribed", Some(ch));
                }
                None => self.send(
                    key,
                    protocol::error(id, ErrorCode::BadRequest, "channel is required"),
                ),
            },
            Kind::Publish => self.on_publish(key, &session, req),
            Kind::Send => self.on_send(key, &session, req),
            Kind::Ping => self.reply(key, id, "pong", None),
            Kind::Presence => self.on_presence(key, &session, req),
            Kind::Status => match req.status.as_deref().and_then(Status::parse) {
                Some(status) => {
                    self.set_status(&session.user, status);
                    self.reply(key, id, "ack", None);
                }
                None => self.send(
                    key,
                    protocol::error(
                        id,
                        ErrorCode::BadRequest,
                        "status must be \"online\" or \"away\"",
                    ),
                ),
            },
            Kind::Refresh => self.on_refresh(key, &session, req),
            Kind::History => self.on_history(key, &session, req),
            Kind::Event => self.on_client_event(key, req),
            Kind::Rpc => self.on_rpc(key, &session, req),
            Kind::Auth => self.send(
                key,
                protocol::error(id, ErrorCode::BadRequest, "already authenticated"),
            ),
            Kind::Unknown => {}
        }
    }

    /// The request's channel when the connection may subscribe to it; otherwise the error
    /// frame is sent and `None` returned.
    fn subscribable<'r>(
        &mut self,
        key: usize,
        session: &Session,
        req: &'r Request<'_>,
    ) -> Option<&'r str> {
        let Some(ch) = req.channel.as_deref() else {
            self.send(
                key,
                protocol::error(req.id, ErrorCode::BadRequest, "channel is required"),
            );
            return None;
        };
        if let Err(denied) = channel::may_subscribe(&self.shared.config, &session.identity, ch) {
            // A subscription a proxy allowed also allows `presence` and `history`.
            let subscribed = self.conns[key].subs.iter().any(|c| &**c == ch);
            if denied == channel::Denied::Forbidden && subscribed {
                return Some(ch);
            }
            let proxied = self.shared.config.namespace(ch).subscribe_proxy;
            if denied == channel::Denied::Forbidden && proxied && req.kind == Kind::Subscribe {
                self.subscribe_via_proxy(key, session, req, ch);
                return None;
            }
            self.send(
                key,
                protocol::error(req.id, code_of(denied), denied.message()),
            );
            return None;
        }
        Some(ch)
    }

    fn on_subscribe(&mut self, key: usize, session: &Session, req: &Request<'_>) {
        if req.delta.as_deref().is_some_and(|d| d != "fossil") {
            let message = r#"unknown delta type (the one there is: "fossil")"#;
            return self.send(key, protocol::error(req.id, ErrorCode::BadRequest, message));
        }
        let Some(ch) = self.subscribable(key, session, req) else {
            return;
        };
        self.subscribe_now(key, req.id, ch, req.since.clone(), None);
        self.take_deltas(key, ch, req.delta.is_some());
    }

    /// After a subscribe that asked for deltas (`"delta":"fossil"`): where the namespace
    /// allows them, the connection takes the channel as deltas, its next publication whole.
    pub(super) fn take_deltas(&mut self, key: usize, channel: &str, wanted: bool) {
        if !wanted || !self.shared.config.namespace(channel).deltas {
            return;
        }
        if let Some(name) = self.conns[key].subs.iter().find(|c| &***c == channel) {
            let name = name.clone();
            self.deltas.join(&name, key);
        }
    }

    /// Subscribes a connection that may subscribe to `ch`; `info`: its presence info on the
    /// channel, when a proxy gave one.
    pub(super) fn subscribe_now(
        &mut self,
        key: usize,
        id: Option<u64>,
        ch: &str,
        since: Option<crate::protocol::Since>,
        info: Option<&str>,
    ) {
        let history = self.shared.config.keeps_history(ch);
        match self.subscribe(key, ch) {
            Subscribed::New => {
                let name = self.conns[key]
                    .subs
                    .last()
                    .expect("just subscribed")
                    .clone();
                if history {
                    self.subscribe_with_history(key, id, &name, since);
                } else {
                    self.reply(key, id, "subscribed", Some(ch));
                }
                self.presence_add_with(key, &name, info);
            }
            Subscribed::Already if history => {
                let name = self.conns[key].subs.iter().find(|c| &***c == ch).cloned();
                let name = name.expect("already subscribed");
                self.subscribe_with_history(key, id, &name, since);
            }
            Subscribed::Already => self.reply(key, id, "subscribed", Some(ch)),
            Subscribed::LimitExceeded => self.send(
                key,
                protocol::error(
                    id,
                    ErrorCode::LimitExceeded,
                    "too many subscriptions on this connection",
                ),
            ),
        }
    }

    fn on_publish(&mut self, key: usize, session: &Session, req: &Request<'_>) {
        let id = req.id;
        let (Some(ch), Some(data)) = (req.channel.as_deref(), req.data) else {
            return self.send(
                key,
                protocol::error(id, ErrorCode::BadRequest, "channel and data are required"),
            );
        };
        let proxied = self.shared.config.namespace(ch).publish_proxy;
        match channel::may_publish(&self.shared.config, &session.identity, ch) {
            // With a publish proxy, the backend decides who may publish.
            Err(channel::Denied::Forbidden) if proxied && !ch.starts_with('#') => {}
            Err(denied) => {
                return self.send(key, protocol::error(id, code_of(denied), denied.message()))
            }
            Ok(()) => {}
        }
        if let Some(refusal) = self.chat_refusal(session, ch, data, id) {
            return self.send(key, refusal);
        }
        if proxied {
            return self.publish_via_proxy(key, session, id, ch, data, req.traceparent);
        }
        if self.shared.config.namespace(ch).ingress {
            return self.ingress_publication(key, req, ch, data.get());
        }
        let parent = self.client_trace(req);
        self.publish_now(key, session, id, ch, data.get(), parent);
    }

    /// Publishes a client's publication that passed every check.
    pub(super) fn publish_now(
        &mut self,
        key: usize,
        session: &Session,
        id: Option<u64>,
        ch: &str,
        data: &str,
        parent: Option<TraceParent>,
    ) {
        let from = &session.user;
        crate::route::webhook_queue::publication(&self.shared, ch, data, Some(from));
        if self.shared.config.keeps_history(ch) {
            let ack = id.map(|id| {
                AckTo::Conn(ConnRef {
                    shard: self.index,
                    key,
                    conn: self.conns[key].id,
                    id: Some(id),
                })
            });
            return self.send_to_sequencer(ch, data, Some(from), ack);
        }
        self.publish_traced(ch, || protocol::message(ch, data, Some(from)), parent);
        self.reply(key, id, "ack", None);
    }

    fn on_send(&mut self, key: usize, session: &Session, req: &Request<'_>) {
        let id = req.id;
        let (Some(user), Some(data)) = (req.user.as_deref(), req.data) else {
            return self.send(
                key,
                protocol::error(id, ErrorCode::BadRequest, "user and data are required"),
            );
        };
        if user.is_empty() || user.len() > crate::auth::MAX_USER {
            return self.send(
                key,
                protocol::error(id, ErrorCode::BadRequest, "user must be 1..128 bytes"),
            );
        }
        let frame = protocol::direct(data.get(), Some(&session.user));
        crate::route::relay_direct(&self.shared, user, &frame);
        self.send_to_user(user, frame);
        self.reply(key, id, "ack", None);
    }
}

impl Core {
    /// `presence`: who is in a channel one may subscribe to, from every shard.
    fn on_presence(&mut self, key: usize, session: &Session, req: &Request<'_>) {
        if let Some(ch) = self.subscribable(key, session, req) {
            self.presence_request(key, req.id, ch);
        }
    }

    /// `history`: stored publications of a channel one may subscribe to, from its owner.
    fn on_history(&mut self, key: usize, session: &Session, req: &Request<'_>) {
        let Some(ch) = self.subscribable(key, session, req) else {
            return;
        };
        if !self.shared.config.keeps_history(ch) {
            let msg = "this channel keeps no history";
            return self.send(key, protocol::error(req.id, ErrorCode::NotFound, msg));
        }
        let limit = req.limit.unwrap_or(100).clamp(1, 10_000) as usize;
        let to = HistoryTo::Conn(ConnRef {
            shard: self.index,
            key,
            conn: self.conns[key].id,
            id: req.id,
        });
        let since = req.since.as_ref().map(|s| s.offset());
        let here = Some(self.index);
        if let Some(msg) =
            crate::route::ask_history(&self.shared, here, ch.into(), since, limit, to)
        {
            self.handle(msg);
        }
    }

    /// Replaces the connection's token: same `sub` only; the deadlines move with it. An
    /// opaque token is asked about first (`connect.rs`).
    fn on_refresh(&mut self, key: usize, session: &Session, req: &Request<'_>) {
        let id = req.id;
        let token = req.token.as_deref().unwrap_or("");
        match self.credential(key, token) {
            Credential::Verified(identity) => {
                self.replace_identity(key, session.identity.user(), id, identity)
            }
            Credential::Ask => {
                if let Err(refusal) = self.ask_about(key, token, id, true, &[]) {
                    let frame = protocol::error(id, ErrorCode::Unavailable, refusal.reason());
                    self.send(key, frame);
                }
            }
            Credential::Refused(e) => {
                let message = format!("token refused: {e}");
                self.send(key, protocol::error(id, ErrorCode::Unauthorized, &message));
            }
        }
    }
}

fn code_of(denied: channel::Denied) -> ErrorCode {
    match denied {
        channel::Denied::BadName => ErrorCode::BadRequest,
        channel::Denied::Forbidden => ErrorCode::Forbidden,
    }
}
