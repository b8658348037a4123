//! A client's `rpc`: checked and routed here, posted by the control thread (`crate::rpc`),
//! answered through the inbox (`ToConn`).

use std::time::Instant;

use serde::Serialize;
use serde_json::value::RawValue;

use super::core::Core;
use super::inbox::ConnRef;
use crate::protocol::{self, ErrorCode, Request};
use crate::rpc::Call;

/// Longest method name, in bytes.
const MAX_METHOD: usize = 128;

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
    pub(super) fn on_rpc(&mut self, key: usize, req: &Request<'_>) {
        let id = req.id;
        let method = match req.method.as_deref() {
            Some(m) if !m.is_empty() && m.len() <= MAX_METHOD => m,
            _ => {
                let message = "method is required (1..128 bytes)";
                return self.send(key, protocol::error(id, ErrorCode::BadRequest, message));
            }
        };
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
        let identity = conn
            .identity
            .as_deref()
            .expect("open connections are authenticated");
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
        if !rpc.queue(call) {
            let message = "too many rpc calls are waiting for their backends; retry";
            self.send(key, protocol::error(id, ErrorCode::Unavailable, message));
        }
    }
}
