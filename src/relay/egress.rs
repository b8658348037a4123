//! Backends' operations through Redis (docs/protocol.md §7): JSON on `<prefix>egress` (every
//! instance applies it to its own connections) or `<prefix>egress.<instance>` (that
//! instance acts as if the server API had been called on it, reaching the whole cluster).
//! Malformed messages are counted and logged (rarely: `malformed`), never fatal.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Deserialize;

use crate::protocol::bodies::{Broadcast, Data, Disconnect, Publish, Send};
use crate::route::ops::{self, Scope};
use crate::shared::Shared;

/// The op name alone: the rest is read by the op's own struct (an internally tagged enum
/// would buffer the fields, and raw `data` cannot be read back from that buffer).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    op: std::borrow::Cow<'a, str>,
}

fn apply(shared: &Shared, payload: &[u8], scope: Scope) -> Result<(), String> {
    let head: Head = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let err = |e: serde_json::Error| e.to_string();
    let op = |e: ops::OpError| e.to_string();
    match &*head.op {
        "publish" => {
            let b: Publish = serde_json::from_slice(payload).map_err(err)?;
            ops::publish(shared, &b.channel, &b.data, None, scope).map_err(op)
        }
        "broadcast" => {
            let b: Broadcast = serde_json::from_slice(payload).map_err(err)?;
            ops::broadcast(shared, &b.channels, &b.data, None, scope).map_err(op)
        }
        "send" => {
            let b: Send = serde_json::from_slice(payload).map_err(err)?;
            ops::send(shared, &b.user, &b.data, scope).map_err(op)
        }
        "broadcast_all" => {
            let b: Data = serde_json::from_slice(payload).map_err(err)?;
            ops::broadcast_all(shared, &b.data, scope);
            Ok(())
        }
        "disconnect" => {
            let b: Disconnect = serde_json::from_slice(payload).map_err(err)?;
            let reason = b.reason.as_deref().unwrap_or("");
            ops::disconnect_nowait(shared, &b.user, reason, None, scope).map_err(op)
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

pub fn handle(shared: &Arc<Shared>, payload: &[u8], targeted: bool) {
    let relay = shared.relay.as_ref().expect("relay configured");
    let scope = if targeted {
        Scope::Cluster
    } else {
        Scope::Local
    };
    match apply(shared, payload, scope) {
        Ok(()) => {
            relay.stats.egress.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => super::malformed::egress(shared, payload.len(), &e),
    }
}
