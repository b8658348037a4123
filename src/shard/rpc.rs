//! Calls from a connection to a backend: a client's `rpc`, and the subscribe and publish
//! proxies' questions (`proxy`). Checked and built here, posted by the control thread
//! (`crate::rpc`), answered through the inbox (`RpcDone`, `ProxyDone`).

use std::time::Instant;

use bytes::Bytes;
use hyper::Uri;
use serde::Serialize;
use serde_json::value::RawValue;

use super::conn::Session;
use super::core::Core;
use crate::protocol::{self, ErrorCode, Request, TraceText};
use crate::route::inbox::ConnRef;
use crate::route::rpc_queue::{Call, CallTrace, Caller, Purpose};
use crate::telemetry::TraceParent;

/// Longest method name, in bytes.
const MAX_METHOD: usize = 128;
/// Calls one connection may have waiting for answers (rpc and proxies together): a
/// client cannot take the hub-wide `rpc_max_in_flight` for itself.
pub const MAX_PER_CONNECTION: u8 = 16;

/// What the backend receives (docs/rpc.md, docs/proxies.md).
#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    data: &'a RawValue,
    user: &'a str,
    conn: &'a str,
    client: &'a str,
    instance: &'a str,
    info: &'a RawValue,
    request_id: &'a str,
    claims: Claims<'a>,
}

/// The token's registered claims a backend may need.
#[derive(Serialize)]
struct Claims<'a> {
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
}

/// What a call asks: the method (rpc) or the channel (proxies), and the client's `data`.
pub(super) struct Ask<'a> {
    pub method: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub data: Option<&'a RawValue>,
    /// The frame's `traceparent` (read only when traces are on).
    pub traceparent: Option<TraceText<'a>>,
}

impl Core {
    pub(super) fn on_rpc(&mut self, key: usize, session: &Session, req: &Request<'_>) {
        let id = req.id;
        let method = match req.method.as_deref() {
            Some(m) if !m.is_empty() && m.len() <= MAX_METHOD => m,
            _ => {
                let message = "method is required (1..128 bytes)";
                return self.send(key, protocol::error(id, ErrorCode::BadRequest, message));
            }
        };
        let shared = self.shared.clone();
        let url = shared
            .rpc
            .as_ref()
            .and_then(|rpc| rpc.routes.backend(method));
        let Some(url) = url else {
            let message = format!("no rpc backend is configured for method {method:?}");
            return self.send(key, protocol::error(id, ErrorCode::NotFound, &message));
        };
        let ask = Ask {
            method: Some(method),
            channel: None,
            data: req.data,
            traceparent: req.traceparent,
        };
        self.call_backend(key, session, id, url, ask, Purpose::Rpc);
    }

    /// The client's `traceparent` on a request, read only when traces are on.
    pub(super) fn client_trace(&self, req: &Request<'_>) -> Option<TraceParent> {
        self.shared.traces.as_ref()?;
        req.traceparent.and_then(TraceParent::from_frame)
    }

    /// Queues a call to the backend at `url` for connection `key`, without waiting; the
    /// client hears of a refusal at once.
    pub(super) fn call_backend(
        &mut self,
        key: usize,
        session: &Session,
        id: Option<u64>,
        url: &Uri,
        ask: Ask<'_>,
        purpose: Purpose,
    ) {
        let Some(rpc) = self.shared.rpc.as_ref() else {
            let message = "no backend is configured";
            return self.send(key, protocol::error(id, ErrorCode::NotFound, message));
        };
        if self.conns[key].rpc_in_flight >= MAX_PER_CONNECTION {
            let message = "at most 16 calls to backends may wait for answers per connection";
            return self.send(key, protocol::error(id, ErrorCode::LimitExceeded, message));
        }
        let conn = &self.conns[key];
        let identity = &session.identity;
        let info = serde_json::from_str::<&RawValue>(identity.info()).unwrap_or(RawValue::NULL);
        self.rpc_calls += 1;
        let conn_id = format!("{:x}", conn.id);
        let request_id = format!("{conn_id}-{:x}", self.rpc_calls);
        let body = serde_json::to_vec(&Outgoing {
            method: ask.method,
            channel: ask.channel,
            data: ask.data.unwrap_or(RawValue::NULL),
            user: identity.user(),
            conn: &conn_id,
            client: conn.client.as_deref().unwrap_or(""),
            instance: &self.shared.instance,
            info,
            request_id: &request_id,
            claims: Claims {
                exp: identity.expires_at,
                iat: identity.issued_at,
                jti: identity.jti(),
            },
        })
        .expect("serializing strings and raw JSON");
        // Dropped with the connection (`Core::remove`): its calls stop waiting.
        let gone = self
            .rpc_gone
            .entry(conn.id)
            .or_insert_with(|| tokio::sync::watch::channel(()).0)
            .subscribe();
        let trace = self.shared.traces.as_ref().map(|_| CallTrace {
            parent: ask.traceparent.and_then(TraceParent::from_frame),
            method: ask.method.map(Into::into),
        });
        let call = Call {
            trace,
            url: url.clone(),
            body,
            to: ConnRef {
                shard: self.index,
                key,
                conn: conn.id,
                id,
            },
            caller: Caller {
                user: identity.user().into(),
                conn: conn_id.into(),
                request_id: request_id.into(),
            },
            queued_at: Instant::now(),
            timeout: rpc.timeout(),
            gone,
            purpose,
        };
        if rpc.queue(call) {
            self.conns[key].rpc_in_flight += 1;
        } else {
            let message = "too many calls are waiting for their backends; retry";
            self.send(key, protocol::error(id, ErrorCode::Unavailable, message));
        }
    }

    /// A call ended: one fewer in flight, and its answer (if any) to the client.
    pub fn rpc_done(&mut self, to: ConnRef, frame: Option<Bytes>) {
        if !self.call_done(to) {
            return;
        }
        if let Some(frame) = frame {
            self.send(to.key, frame);
        }
    }

    /// One fewer call in flight for the connection; false when it is gone.
    pub(super) fn call_done(&mut self, to: ConnRef) -> bool {
        let Some(conn) = self.conns.get_mut(to.key).filter(|c| c.id == to.conn) else {
            return false;
        };
        conn.rpc_in_flight = conn.rpc_in_flight.saturating_sub(1);
        if conn.rpc_in_flight == 0 {
            self.rpc_gone.remove(&to.conn);
        }
        true
    }
}
