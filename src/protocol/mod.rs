//! The JSON frames of `docs/protocol.md` §2: decoding client requests without copying
//! `data` (`request`), and encoding the hub's frames straight into WebSocket frame bytes.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::ws::frame::{FrameBuf, Opcode};

pub mod bodies;
pub mod delta;
pub mod envelope;
pub mod fossil;
mod history;
mod presence;
pub mod proto;
mod request;
pub mod transcode;
pub mod wire;

pub use history::*;
pub use presence::merge_presence;
pub use request::{decode, Kind, Request, TraceText};

/// Declares [`ErrorCode`] with its wire names, once: the enum, `as_str` and `parse`.
macro_rules! error_codes {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Error codes of §2.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($variant),*
        }

        impl ErrorCode {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name),*
                }
            }

            /// The code named `s` (as a backend may name it).
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s {
                    $($name => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    BadRequest => "bad_request",
    Unauthorized => "unauthorized",
    Forbidden => "forbidden",
    NotFound => "not_found",
    RateLimited => "rate_limited",
    TooLarge => "too_large",
    LimitExceeded => "limit_exceeded",
    Unavailable => "unavailable",
    Timeout => "timeout",
    Internal => "internal",
}

fn text_frame<T: Serialize>(value: &T) -> Bytes {
    let mut f = FrameBuf::with_capacity(96);
    serde_json::to_writer(f.payload_mut().writer(), value).expect("serializing a plain struct");
    f.finish(Opcode::Text)
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

/// `{"id":..,"type":"error","code":..,"message":..}`.
pub fn error(id: Option<u64>, code: ErrorCode, message: &str) -> Bytes {
    text_frame(&ErrorFrame {
        id,
        kind: "error",
        code: code.as_str(),
        message,
        retry_after_ms: None,
    })
}

/// An error that may be retried after `retry_after_ms` (`unavailable` from an open
/// circuit breaker: docs/protocol.md §9).
pub fn error_retry(id: Option<u64>, code: ErrorCode, message: &str, retry_after_ms: u64) -> Bytes {
    text_frame(&ErrorFrame {
        id,
        kind: "error",
        code: code.as_str(),
        message,
        retry_after_ms: Some(retry_after_ms),
    })
}

/// A `rate_limited` error with its `retry_after_ms`.
pub fn rate_limited(id: Option<u64>, retry_after_ms: u64) -> Bytes {
    text_frame(&ErrorFrame {
        id,
        kind: "error",
        code: ErrorCode::RateLimited.as_str(),
        message: "rate limit exceeded",
        retry_after_ms: Some(retry_after_ms),
    })
}

#[derive(Serialize)]
struct Reply<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
}

/// A success reply of `kind` (`ack`, `pong`, `subscribed`, `unsubscribed`).
pub fn reply(id: Option<u64>, kind: &str, channel: Option<&str>) -> Bytes {
    text_frame(&Reply { id, kind, channel })
}

/// The first frame of an authenticated connection.
#[derive(Serialize)]
pub struct Welcome<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub conn: &'a str,
    pub user: &'a str,
    pub instance: &'a str,
    pub shard: usize,
    pub ping_interval_ms: u64,
    pub expires_at: u64,
}

pub fn welcome(w: &Welcome<'_>) -> Bytes {
    text_frame(w)
}

/// `{"id":..,"type":"result","data":..}`: an `rpc` answer, `data` as the backend wrote it.
pub fn result(id: Option<u64>, data: &RawValue) -> Bytes {
    #[derive(Serialize)]
    struct Result<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        #[serde(rename = "type")]
        kind: &'static str,
        data: &'a RawValue,
    }
    text_frame(&Result {
        id,
        kind: "result",
        data,
    })
}

/// `{"type":"reconnect","after_ms":N}`.
pub fn reconnect(after_ms: u64) -> Bytes {
    #[derive(Serialize)]
    struct Reconnect {
        #[serde(rename = "type")]
        kind: &'static str,
        after_ms: u64,
    }
    text_frame(&Reconnect {
        kind: "reconnect",
        after_ms,
    })
}

#[derive(Serialize)]
struct Expiry {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(rename = "type")]
    kind: &'static str,
    expires_at: u64,
}

/// `{"type":"expiring","expires_at":..}`: the token expires soon.
pub fn expiring(expires_at: u64) -> Bytes {
    text_frame(&Expiry {
        id: None,
        kind: "expiring",
        expires_at,
    })
}

/// `{"id":..,"type":"refreshed","expires_at":..}`.
pub fn refreshed(id: Option<u64>, expires_at: u64) -> Bytes {
    text_frame(&Expiry {
        id,
        kind: "refreshed",
        expires_at,
    })
}

/// A user's presence status (§2 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Online,
    Away,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "online" => Some(Status::Online),
            "away" => Some(Status::Away),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Away => "away",
        }
    }
}

/// One user in a presence answer; `info` is raw JSON from the token.
#[derive(Debug, Clone)]
pub struct PresenceUser {
    pub user: Box<str>,
    pub conns: u32,
    pub status: Status,
    pub info: Box<str>,
}

/// `{"type":"join"|"leave","channel":..,"user":..,"info":..}`.
pub fn join_leave(kind: &str, channel: &str, user: &str, info: &str) -> Bytes {
    let mut f = FrameBuf::with_capacity(48 + channel.len() + user.len() + info.len());
    let b = f.payload_mut();
    b.extend_from_slice(br#"{"type":"#);
    push_json_str(b, kind);
    b.extend_from_slice(br#","channel":"#);
    push_json_str(b, channel);
    b.extend_from_slice(br#","user":"#);
    push_json_str(b, user);
    b.extend_from_slice(br#","info":"#);
    b.extend_from_slice(info.as_bytes());
    b.put_u8(b'}');
    f.finish(Opcode::Text)
}

/// `{"type":"status","channel":..,"user":..,"status":..}`.
pub fn status(channel: &str, user: &str, status: Status) -> Bytes {
    #[derive(Serialize)]
    struct StatusFrame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        channel: &'a str,
        user: &'a str,
        status: &'static str,
    }
    text_frame(&StatusFrame {
        kind: "status",
        channel,
        user,
        status: status.as_str(),
    })
}

/// The `presence` reply: `{"id":..,"type":"presence","channel":..,"users":[...]}`.
pub fn presence(id: Option<u64>, channel: &str, users: &[PresenceUser]) -> Bytes {
    let mut f = FrameBuf::with_capacity(64 + users.len() * 64);
    let b = f.payload_mut();
    open_object(b, id);
    b.extend_from_slice(br#""type":"presence","channel":"#);
    push_json_str(b, channel);
    b.extend_from_slice(br#","users":["#);
    for (i, u) in users.iter().enumerate() {
        if i > 0 {
            b.put_u8(b',');
        }
        b.extend_from_slice(br#"{"user":"#);
        push_json_str(b, &u.user);
        b.extend_from_slice(
            format!(
                r#","conns":{},"status":"{}","info":"#,
                u.conns,
                u.status.as_str()
            )
            .as_bytes(),
        );
        b.extend_from_slice(u.info.as_bytes());
        b.put_u8(b'}');
    }
    b.extend_from_slice(b"]}");
    f.finish(Opcode::Text)
}

/// `{` and, for a reply, `"id":N,`: how a frame with an optional request id begins.
pub(crate) fn open_object(b: &mut BytesMut, id: Option<u64>) {
    b.put_u8(b'{');
    if let Some(id) = id {
        b.extend_from_slice(format!(r#""id":{id},"#).as_bytes());
    }
}

pub(crate) fn push_json_str(buf: &mut BytesMut, s: &str) {
    serde_json::to_writer(buf.writer(), s).expect("serializing a string");
}

/// The common end of `message` and `direct`: `"data":<raw>,"from":..}`.
fn push_data_from(b: &mut BytesMut, data: &str, from: Option<&str>) {
    b.extend_from_slice(br#""data":"#);
    b.extend_from_slice(data.as_bytes());
    if let Some(from) = from {
        b.extend_from_slice(br#","from":"#);
        push_json_str(b, from);
    }
    b.put_u8(b'}');
}

/// A publication, encoded once into its final frame: `{"type":"message","channel":..,
/// "data":<raw bytes as published>,"from":..}`.
pub fn message(channel: &str, data: &str, from: Option<&str>) -> Bytes {
    let mut f = FrameBuf::with_capacity(48 + channel.len() + data.len() + from.map_or(0, str::len));
    let b = f.payload_mut();
    b.extend_from_slice(br#"{"type":"message","channel":"#);
    push_json_str(b, channel);
    b.extend_from_slice(b",");
    push_data_from(b, data, from);
    f.finish(Opcode::Text)
}

/// A direct message: `{"type":"direct","data":..,"from":..}`.
pub fn direct(data: &str, from: Option<&str>) -> Bytes {
    let mut f = FrameBuf::with_capacity(40 + data.len() + from.map_or(0, str::len));
    let b = f.payload_mut();
    b.extend_from_slice(br#"{"type":"direct","#);
    push_data_from(b, data, from);
    f.finish(Opcode::Text)
}

/// The server API's message to every connection: `{"type":"broadcast","data":..}`.
pub fn broadcast(data: &str) -> Bytes {
    let mut f = FrameBuf::with_capacity(32 + data.len());
    let b = f.payload_mut();
    b.extend_from_slice(br#"{"type":"broadcast","#);
    push_data_from(b, data, None);
    f.finish(Opcode::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(frame: &Bytes) -> &str {
        let h = crate::ws::frame::head_len(frame.len() - 2);
        let h = if frame.len() - h < 126 { 2 } else { h };
        std::str::from_utf8(&frame[h..]).unwrap()
    }

    #[test]
    fn data_is_relayed_byte_for_byte() {
        let req =
            decode(r#"{"id":3,"type":"publish","channel":"c","data":{ "b" : 1.50, "a":[ 1 ] }}"#)
                .unwrap();
        assert_eq!(req.id, Some(3));
        let data = req.data.unwrap().get();
        assert_eq!(data, r#"{ "b" : 1.50, "a":[ 1 ] }"#);
        let f = message("c", data, Some("u\"1"));
        assert_eq!(
            payload(&f),
            r#"{"type":"message","channel":"c","data":{ "b" : 1.50, "a":[ 1 ] },"from":"u\"1"}"#
        );
        let v: serde_json::Value = serde_json::from_str(payload(&f)).unwrap();
        assert_eq!(v["data"]["b"], 1.5);
    }

    #[test]
    fn replies() {
        assert_eq!(
            payload(&reply(Some(1), "subscribed", Some("t:1"))),
            r#"{"id":1,"type":"subscribed","channel":"t:1"}"#
        );
        assert_eq!(payload(&reply(None, "ack", None)), r#"{"type":"ack"}"#);
        assert_eq!(
            payload(&error(Some(7), ErrorCode::Forbidden, "no")),
            r#"{"id":7,"type":"error","code":"forbidden","message":"no"}"#
        );
        assert!(payload(&rate_limited(None, 20)).ends_with(r#""retry_after_ms":20}"#));
        assert_eq!(
            payload(&direct("[1]", None)),
            r#"{"type":"direct","data":[1]}"#
        );
        let users = [PresenceUser {
            user: "u1".into(),
            conns: 2,
            status: Status::Away,
            info: r#"{"n":1}"#.into(),
        }];
        let v: serde_json::Value =
            serde_json::from_str(payload(&presence(Some(4), "c", &users))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":4,"type":"presence","channel":"c","users":[{"user":"u1","conns":2,"status":"away","info":{"n":1}}]})
        );
        let v: serde_json::Value =
            serde_json::from_str(payload(&join_leave("join", "c", "u", "{}"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"join","channel":"c","user":"u","info":{}})
        );
    }
}
