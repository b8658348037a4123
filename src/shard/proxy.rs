//! The subscribe and publish proxies (docs/proxies.md): a question to the game's backend,
//! posted off the shard like `rpc` (`Core::call_backend`), and the subscription or the
//! publication carried out when the answer comes. A slow backend holds up only the
//! connections waiting for it.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::conn::Session;
use super::core::Core;
use super::rpc::Ask;
use crate::protocol::{self, ErrorCode, Request, TraceText};
use crate::route::inbox::ConnRef;
use crate::route::rpc_queue::{Purpose, Verdict};
use crate::telemetry::TraceParent;

impl Core {
    /// A subscribe the token does not allow, on a namespace with `subscribe_proxy`.
    pub(super) fn subscribe_via_proxy(
        &mut self,
        key: usize,
        session: &Session,
        req: &Request<'_>,
        channel: &str,
    ) {
        let shared = self.shared.clone();
        let Some(url) = shared
            .rpc
            .as_ref()
            .and_then(|r| r.routes.subscribe_proxy.as_ref())
        else {
            let message = "no subscribe proxy is configured";
            return self.send(key, protocol::error(req.id, ErrorCode::Forbidden, message));
        };
        let ask = Ask {
            method: None,
            channel: Some(channel),
            data: req.data,
            traceparent: req.traceparent,
        };
        let purpose = Purpose::Subscribe {
            channel: channel.into(),
            since: req.since.clone(),
            delta: req.delta.is_some(),
        };
        self.call_backend(key, session, req.id, url, ask, purpose);
    }

    /// A client publish on a namespace with `publish_proxy`: the backend sees it first.
    pub(super) fn publish_via_proxy(
        &mut self,
        key: usize,
        session: &Session,
        id: Option<u64>,
        channel: &str,
        data: &RawValue,
        traceparent: Option<TraceText<'_>>,
    ) {
        let shared = self.shared.clone();
        let Some(url) = shared
            .rpc
            .as_ref()
            .and_then(|r| r.routes.publish_proxy.as_ref())
        else {
            let message = "no publish proxy is configured";
            return self.send(key, protocol::error(id, ErrorCode::Forbidden, message));
        };
        let ask = Ask {
            method: None,
            channel: Some(channel),
            data: Some(data),
            traceparent,
        };
        let purpose = Purpose::Publish {
            channel: channel.into(),
            data: data.get().into(),
            parent: self
                .shared
                .traces
                .as_ref()
                .and(traceparent)
                .and_then(TraceParent::from_frame),
        };
        self.call_backend(key, session, id, url, ask, purpose);
    }

    /// A proxy's answer: the subscription or publication goes ahead, or the client hears why
    /// not.
    pub fn proxy_done(&mut self, to: ConnRef, purpose: Purpose, verdict: Verdict) {
        if !self.call_done(to) {
            return; // the connection went meanwhile
        }
        let Some(session) = self.conns[to.key].phase.open().cloned() else {
            return;
        };
        match (purpose, verdict) {
            (_, Verdict::Refuse(frame)) => self.send(to.key, frame),
            (
                Purpose::Subscribe {
                    channel,
                    since,
                    delta,
                },
                Verdict::Allow { info, .. },
            ) => {
                self.subscribe_now(to.key, to.id, &channel, since, info.as_deref());
                self.take_deltas(to.key, &channel, delta);
            }
            (
                Purpose::Publish {
                    channel,
                    data,
                    parent,
                },
                Verdict::Allow { data: replaced, .. },
            ) => {
                let data: Arc<str> = replaced.map_or_else(|| data.into(), Into::into);
                self.publish_now(to.key, &session, to.id, &channel, &data, parent);
            }
            (Purpose::Rpc | Purpose::Connect { .. }, Verdict::Allow { .. }) => {}
        }
    }
}
