//! A client's `rpc`: checked and routed here, posted by the control thread (`crate::rpc`),
//! answered through the inbox (`ToConn`).

use std::time::Instant;

use bytes::Bytes;

use serde::Serialize;
use serde_json::value::RawValue;

use super::conn::Session;
use super::core::Core;
use crate::protocol::{self, ErrorCode, Request};
use crate::route::inbox::ConnRef;
use crate::route::rpc_queue::Call;

/// Longest method name, in bytes.
const MAX_METHOD: usize = 128;
/// `rpc` calls one connection may have waiting for answers: a client cannot take the
/// hub-wide `rpc_max_in_flight` for itself.
pub const MAX_PER_CONNECTION: u8 = 16;

/// What the backend receives.
#[derive(Serialize)]
struct Outgoing<'a> {
    method: &'a str,
    data: &'a RawValue,
    user: &'a str,
    conn: String,
    client: &'a str,
    instance: &'a str,
    info: &'a RawValue,
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
        if self.conns[key].rpc_in_flight >= MAX_PER_CONNECTION {
            let message = "at most 16 rpc calls may wait for answers per connection";
            return self.send(key, protocol::error(id, ErrorCode::LimitExceeded, message));
        }
        let shared = self.shared.clone();
        let Some((rpc, url)) = shared
            .rpc
            .as_ref()
            .and_then(|rpc| Some((rpc, rpc.routes.backend(method)?)))
        else {
            let message = format!("no rpc backend is configured for method {method:?}");
            return self.send(key, protocol::error(id, ErrorCode::NotFound, &message));
        };
        let conn = &self.conns[key];
        let identity = &session.identity;
        let info = serde_json::from_str::<&RawValue>(&identity.info).unwrap_or(RawValue::NULL);
        let body = serde_json::to_vec(&Outgoing {
            method,
            data: req.data.unwrap_or(RawValue::NULL),
            user: &identity.user,
            conn: format!("{:x}", conn.id),
            client: conn.client.as_deref().unwrap_or(""),
            instance: &shared.instance,
            info,
        })
        .expect("serializing strings and raw JSON");
        let call = Call {
            url: url.clone(),
            body,
            to: ConnRef {
                shard: self.index,
                key,
                conn: conn.id,
                id,
            },
            queued_at: Instant::now(),
        };
        if rpc.queue(call) {
            self.conns[key].rpc_in_flight += 1;
        } else {
            let message = "too many rpc calls are waiting for their backends; retry";
            self.send(key, protocol::error(id, ErrorCode::Unavailable, message));
        }
    }

    /// A call ended: one fewer in flight, and its answer (if any) to the client.
    pub fn rpc_done(&mut self, to: ConnRef, frame: Option<Bytes>) {
        let Some(conn) = self.conns.get_mut(to.key).filter(|c| c.id == to.conn) else {
            return;
        };
        conn.rpc_in_flight = conn.rpc_in_flight.saturating_sub(1);
        if let Some(frame) = frame {
            self.send(to.key, frame);
        }
    }
}
