//! A hub frame made as JSON, turned into its protobuf form for `ringhub.v1.proto`
//! connections (`HubFrame` of proto/ringhub/v1/hub.proto). Every frame the hub sends is
//! made once as JSON; this is the one place that knows the other encoding, so no frame
//! exists in one encoding only. `data`, `info` and a result's `data` are copied as the raw
//! JSON text they are, never parsed into values and written again.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use prost::Message as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::proto::pb::{self, hub_frame::Frame};
use crate::ws::frame::{self, FrameBuf, Opcode};

/// The fields of any JSON frame the hub makes; each frame type uses some.
#[derive(Deserialize)]
struct Json<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    id: Option<u64>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    offset: Option<u64>,
    /// On a delta subscription's `message`: its `data` is a JSON string (docs/protocol.md
    /// §3, "Deltas").
    delta: Option<bool>,
    #[serde(borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    info: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    conn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    instance: Option<Cow<'a, str>>,
    shard: Option<u32>,
    ping_interval_ms: Option<u64>,
    expires_at: Option<u64>,
    after_ms: Option<u64>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    retry_after_ms: Option<u64>,
    #[serde(borrow)]
    epoch: Option<Cow<'a, str>>,
    recovered: Option<bool>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    users: Vec<User<'a>>,
    #[serde(default, borrow)]
    publications: Vec<Publication<'a>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow)]
    user: Cow<'a, str>,
    #[serde(default)]
    conns: u32,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    info: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Publication<'a> {
    #[serde(default)]
    offset: u64,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(default)]
    ts: u64,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

fn text(s: Option<Cow<'_, str>>) -> String {
    s.map(Cow::into_owned).unwrap_or_default()
}

fn raw(v: Option<&RawValue>) -> Vec<u8> {
    v.map(|v| v.get().as_bytes().to_vec()).unwrap_or_default()
}

/// A `data` that JSON sends as a string (a delta subscription's whole publication or
/// Fossil delta): the string's bytes, which protobuf carries as they are. Never from this
/// hub, a `data` that is not a string: its JSON text.
fn unquoted(v: Option<&RawValue>) -> Vec<u8> {
    match v.map(|v| serde_json::from_str::<Cow<'_, str>>(v.get())) {
        Some(Ok(text)) => text.into_owned().into_bytes(),
        _ => raw(v),
    }
}

/// Is this a text frame (the JSON frames)? Hub frames are final and unfragmented: a text
/// frame starts with 0x81.
pub fn is_text(frame: &[u8]) -> bool {
    frame.first() == Some(&0x81)
}

/// The protobuf frame for a frame the hub made as JSON. Frames that are not text (pings,
/// closes) and bytes that are not a frame (the 101) are the same in both encodings and
/// come back as they are.
pub fn to_proto(json_frame: &Bytes) -> Bytes {
    if !is_text(json_frame) {
        return json_frame.clone();
    }
    let payload = frame::payload_of(json_frame);
    let message = hub_frame(&payload);
    let mut f = FrameBuf::with_capacity(message.encoded_len());
    let buf: &mut BytesMut = f.payload_mut();
    message
        .encode(buf)
        .expect("a BytesMut grows as the message needs");
    f.finish(Opcode::Binary)
}

/// The `HubFrame` of one JSON frame's payload. A type this schema has no message for (or,
/// never from this hub, a payload that does not parse) goes as its JSON text (`json`).
pub fn hub_frame(payload: &[u8]) -> pb::HubFrame {
    let Ok(j) = serde_json::from_slice::<Json<'_>>(payload) else {
        return pb::HubFrame {
            id: None,
            frame: Some(Frame::Json(payload.to_vec())),
        };
    };
    let id = j.id;
    let frame = match &*j.kind {
        "message" => Frame::Message(pb::Message {
            channel: text(j.channel),
            data: match j.delta {
                Some(_) => unquoted(j.data),
                None => raw(j.data),
            },
            from_user: j.from.map(Cow::into_owned),
            offset: j.offset,
            delta: j.delta,
        }),
        "direct" => Frame::Direct(pb::Direct {
            data: raw(j.data),
            from_user: j.from.map(Cow::into_owned),
        }),
        "broadcast" => Frame::Broadcast(pb::Broadcast { data: raw(j.data) }),
        "ack" => Frame::Ack(pb::Ack { offset: j.offset }),
        "pong" => Frame::Pong(pb::Pong {}),
        "error" => Frame::Error(pb::Error {
            code: text(j.code),
            message: text(j.message),
            retry_after_ms: j.retry_after_ms,
        }),
        "subscribed" => Frame::Subscribed(pb::Subscribed {
            channel: text(j.channel),
            offset: j.offset,
            epoch: j.epoch.map(Cow::into_owned),
            recovered: j.recovered,
        }),
        "unsubscribed" => Frame::Unsubscribed(pb::Unsubscribed {
            channel: text(j.channel),
            reason: j.reason.map(Cow::into_owned),
        }),
        "welcome" => Frame::Welcome(pb::Welcome {
            conn: text(j.conn),
            user: text(j.user),
            instance: text(j.instance),
            shard: j.shard.unwrap_or_default(),
            ping_interval_ms: j.ping_interval_ms.unwrap_or_default(),
            expires_at: j.expires_at.unwrap_or_default(),
        }),
        "presence" => Frame::Presence(pb::Presence {
            channel: text(j.channel),
            users: j
                .users
                .into_iter()
                .map(|u| pb::PresenceUser {
                    user: u.user.into_owned(),
                    conns: u.conns,
                    status: text(u.status),
                    info: raw(u.info),
                })
                .collect(),
        }),
        "history" => Frame::History(pb::History {
            channel: text(j.channel),
            epoch: text(j.epoch),
            publications: j
                .publications
                .into_iter()
                .map(|p| pb::Publication {
                    offset: p.offset,
                    from_user: p.from.map(Cow::into_owned),
                    ts: p.ts,
                    data: raw(p.data),
                })
                .collect(),
        }),
        "refreshed" => Frame::Refreshed(pb::Refreshed {
            expires_at: j.expires_at.unwrap_or_default(),
        }),
        "result" => Frame::Result(pb::Result { data: raw(j.data) }),
        "join" | "leave" => Frame::JoinLeave(pb::JoinLeave {
            joined: j.kind == "join",
            channel: text(j.channel),
            user: text(j.user),
            info: raw(j.info),
        }),
        "status" => Frame::Status(pb::StatusChange {
            channel: text(j.channel),
            user: text(j.user),
            status: text(j.status),
        }),
        "expiring" => Frame::Expiring(pb::Expiring {
            expires_at: j.expires_at.unwrap_or_default(),
        }),
        "reconnect" => Frame::Reconnect(pb::Reconnect {
            after_ms: j.after_ms.unwrap_or_default(),
        }),
        _ => Frame::Json(payload.to_vec()),
    };
    pb::HubFrame {
        id,
        frame: Some(frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol;

    fn decode(frame: &Bytes) -> pb::HubFrame {
        assert_eq!(frame[0], 0x82, "a final binary frame");
        pb::HubFrame::decode(&frame::payload_of(frame)[..]).unwrap()
    }

    #[test]
    fn a_publication_keeps_its_data_byte_for_byte() {
        let json = protocol::message_at("t:1", r#"{ "a" : 1.50 }"#, Some("u1"), 7);
        let f = decode(&to_proto(&json));
        assert_eq!(
            f.frame,
            Some(Frame::Message(pb::Message {
                channel: "t:1".into(),
                data: br#"{ "a" : 1.50 }"#.to_vec(),
                from_user: Some("u1".into()),
                offset: Some(7),
                delta: None,
            }))
        );
        assert_eq!(f.id, None);
    }

    /// A delta subscription's message: JSON's `data` string is protobuf's bytes, unescaped,
    /// and `delta` says which form it is.
    #[test]
    fn a_delta_carries_its_bytes_and_its_flag() {
        let published = protocol::message_at("t:1", r#"{"pot":"5\n"}"#, None, 3);
        let payload = frame::payload_of(&published);
        let m = protocol::delta::parse(&payload).unwrap();
        for (bytes, is_delta) in [
            (&b"1z\nI@0,E:\"pot\"1U@W,281dXW;"[..], true),
            (m.data.get().as_bytes(), false),
        ] {
            let json = protocol::delta::frame(&m, bytes, is_delta).unwrap();
            let Some(Frame::Message(out)) = decode(&to_proto(&json)).frame else {
                panic!("a message")
            };
            assert_eq!((&out.data[..], out.delta), (bytes, Some(is_delta)));
            assert_eq!(out.offset, Some(3));
        }
    }

    #[test]
    fn replies_errors_and_presence() {
        let f = decode(&to_proto(&protocol::rate_limited(Some(3), 20)));
        assert_eq!(f.id, Some(3));
        assert_eq!(
            f.frame,
            Some(Frame::Error(pb::Error {
                code: "rate_limited".into(),
                message: "rate limit exceeded".into(),
                retry_after_ms: Some(20),
            }))
        );
        let users = [protocol::PresenceUser {
            user: "u1".into(),
            conns: 2,
            status: protocol::Status::Away,
            info: r#"{"n":1}"#.into(),
        }];
        let f = decode(&to_proto(&protocol::presence(Some(4), "c", &users)));
        let Some(Frame::Presence(p)) = f.frame else {
            panic!("a presence frame")
        };
        assert_eq!(p.users[0].info, br#"{"n":1}"#);
        assert_eq!(p.users[0].status, "away");
        let f = decode(&to_proto(&protocol::join_leave("leave", "c", "u", "{}")));
        assert!(matches!(f.frame, Some(Frame::JoinLeave(j)) if !j.joined && j.user == "u"));
        let f = decode(&to_proto(&protocol::reply(Some(1), "pong", None)));
        assert_eq!(f.frame, Some(Frame::Pong(pb::Pong {})));
    }

    /// Every frame the hub makes as JSON has its own protobuf message: none falls back
    /// to `json`, and none loses its fields on the way.
    #[test]
    fn every_hub_frame_has_its_message() {
        let data = serde_json::value::RawValue::from_string("[1]".into()).unwrap();
        let pubs = protocol::publications_json([protocol::Publication {
            offset: 3,
            from: Some("u"),
            ts: 9,
            data: "{}",
        }]);
        let welcome = protocol::Welcome {
            id: Some(1),
            kind: "welcome",
            conn: "c1",
            user: "u",
            instance: "i",
            shard: 2,
            ping_interval_ms: 25_000,
            expires_at: 7,
        };
        let frames = [
            protocol::welcome(&welcome),
            protocol::error_retry(Some(1), protocol::ErrorCode::Unavailable, "m", 5),
            protocol::reply(Some(1), "subscribed", Some("c")),
            protocol::reply(Some(1), "unsubscribed", Some("c")),
            protocol::reply(Some(1), "ack", None),
            protocol::subscribed(Some(1), "c", 4, "e", Some(true)),
            protocol::ack_offset(Some(1), 4),
            protocol::unsubscribed_lost("c"),
            protocol::history(Some(1), "c", "e", &pubs),
            protocol::refreshed(Some(1), 7),
            protocol::result(Some(1), &data),
            protocol::message("c", "[1]", None),
            protocol::direct("[1]", Some("u")),
            protocol::broadcast("[1]"),
            protocol::join_leave("join", "c", "u", "{}"),
            protocol::status("c", "u", protocol::Status::Online),
            protocol::expiring(7),
            protocol::reconnect(100),
        ];
        for json in frames {
            let f = decode(&to_proto(&json));
            let text = String::from_utf8_lossy(&frame::payload_of(&json)).into_owned();
            assert!(!matches!(f.frame, None | Some(Frame::Json(_))), "{text}");
            match f.frame.unwrap() {
                Frame::Welcome(w) => assert_eq!((w.shard, w.ping_interval_ms), (2, 25_000)),
                Frame::Error(e) => assert_eq!(e.retry_after_ms, Some(5)),
                Frame::Subscribed(s) if text.contains("offset") => {
                    assert_eq!((s.offset, s.recovered), (Some(4), Some(true)))
                }
                Frame::Unsubscribed(u) if text.contains("reason") => {
                    assert_eq!(u.reason.as_deref(), Some("recovery_failed"))
                }
                Frame::Ack(a) if text.contains("offset") => assert_eq!(a.offset, Some(4)),
                Frame::History(h) => {
                    assert_eq!(h.publications[0].from_user.as_deref(), Some("u"));
                    assert_eq!((h.publications[0].offset, h.publications[0].ts), (3, 9));
                }
                Frame::Result(r) => assert_eq!(r.data, b"[1]"),
                Frame::Broadcast(b) => assert_eq!(b.data, b"[1]"),
                Frame::Reconnect(r) => assert_eq!(r.after_ms, 100),
                _ => {}
            }
        }
    }

    #[test]
    fn unknown_types_go_as_json_and_control_frames_as_they_are() {
        let json = frame::encode(Opcode::Text, br#"{"type":"novel","x":1}"#);
        let f = decode(&to_proto(&json));
        assert_eq!(
            f.frame,
            Some(Frame::Json(br#"{"type":"novel","x":1}"#.to_vec()))
        );
        let close = frame::close(1000, "");
        assert_eq!(to_proto(&close), close);
        let http = Bytes::from_static(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        assert_eq!(to_proto(&http), http);
    }
}
