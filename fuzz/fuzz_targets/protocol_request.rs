//! Client request frames (`ringhub::protocol::decode`): any text, then what a shard does
//! with a decoded request before it touches state: the channel checks, the status, the
//! position, and the frames it answers with, which must be valid JSON whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringhub::auth::{Claims, Identity};
use ringhub::channel;
use ringhub::protocol::{self, ErrorCode, Status};
use ringhub::ws::frame::payload_of;
use ringhub::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let req = match protocol::decode(text) {
        Ok(req) => req,
        Err((id, why)) => {
            json(&protocol::error(id, ErrorCode::BadRequest, &why));
            return;
        }
    };
    let _ = req.status.as_deref().and_then(Status::parse);
    let _ = req.since.as_ref().map(|s| (s.offset(), s.epoch()));
    let user = req.user.as_deref().unwrap_or("u");
    if let Some(ch) = req.channel.as_deref() {
        let config = Config::default();
        let who: Identity = Claims {
            user: user.to_string(),
            expires_at: 0,
            issued_at: None,
            jti: None,
            channels: vec!["room:*".into(), ch.to_string()],
            publish: vec!["*".into()],
            info: "{}".into(),
        }
        .into();
        let _ = channel::may_subscribe(&config, &who, ch);
        let _ = channel::may_publish(&config, &who, ch);
        let _ = config.namespace(ch);
        json(&protocol::reply(req.id, "subscribed", Some(ch)));
        if let Some(d) = req.data {
            json(&protocol::message(ch, d.get(), Some(user)));
            json(&protocol::message_at(ch, d.get(), None, u64::MAX));
        }
    }
    if let Some(d) = req.data {
        json(&protocol::direct(d.get(), req.user.as_deref()));
    }
    json(&protocol::error(req.id, ErrorCode::BadRequest, text));
});

/// The frame's payload is JSON.
fn json(frame: &bytes::Bytes) {
    let payload = payload_of(frame);
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&payload));
    }
}
