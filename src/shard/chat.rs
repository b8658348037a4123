//! A client publication against its namespace's chat rules (`crate::chat`) and its
//! per-user publication rate there; mutes come first (`mutes`). Each refusal is an error
//! frame for the publisher alone (docs/chat.md).

use std::time::Instant;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::conn::Session;
use super::core::Core;
use crate::chat::Broken;
use crate::limits::Rate;
use crate::protocol::{self, ErrorCode};

impl Core {
    /// The error frame refusing this publication, or None when it may go.
    pub(super) fn chat_refusal(
        &mut self,
        session: &Session,
        channel: &str,
        data: &RawValue,
        id: Option<u64>,
    ) -> Option<Bytes> {
        let now_s = crate::auth::unix_now();
        if let Some(mute) = self.mutes.of(&session.user, channel, now_s) {
            let message = match &mute.reason {
                Some(reason) => format!("you are muted on this channel: {reason}"),
                None => "you are muted on this channel".to_string(),
            };
            return Some(protocol::error(id, ErrorCode::Forbidden, &message));
        }
        let shared = &self.shared;
        let namespace = crate::channel::namespace_of(channel);
        if let Some(rules) = shared.chat.of(namespace) {
            if let Err(broken) = rules.check(data) {
                let code = match broken {
                    Broken::TooLong { .. } => ErrorCode::TooLarge,
                    Broken::Invisible { .. } => ErrorCode::BadRequest,
                    Broken::Blocked => ErrorCode::Forbidden,
                };
                return Some(protocol::error(id, code, &broken.message()));
            }
        }
        let ns = shared.config.namespace(channel);
        if ns.user_publishes_per_second > 0 {
            let rate = Rate::new(ns.user_publishes_per_second, ns.user_publish_burst);
            let now = Instant::now();
            if let Err(wait) = self
                .users
                .take_publishing(&session.user, namespace, rate, now)
            {
                crate::metrics::local(|m| crate::metrics::bump(&m.rate_limited, 1));
                return Some(protocol::rate_limited(id, wait.as_millis().max(1) as u64));
            }
        }
        None
    }
}
