//! The protobuf encoding of `ringhub.v1.proto` connections (proto/ringhub/v1): the prost
//! types, and a client's `ClientFrame` read into the same [`Request`] a JSON frame gives,
//! so every request handler has one code path. The hub's frames go the other way in
//! `transcode.rs`.

use std::borrow::Cow;

use prost::Message as _;
use serde_json::value::RawValue;

use super::{Kind, Request, Since, TraceText};

/// The types generated from proto/ringhub/v1 (checked in; `tests/proto_codegen.rs`
/// regenerates them and fails on a difference).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!("pb/ringhub.v1.rs");
}

use pb::client_frame::Request as Req;

/// Decodes a binary frame's payload. On failure: why, as a `bad_request` message.
pub fn decode_frame(payload: &[u8]) -> Result<pb::ClientFrame, String> {
    pb::ClientFrame::decode(payload).map_err(|_| "malformed protobuf".to_string())
}

/// A `data` field: a JSON text, borrowed as the raw value it is. Empty is no `data`.
fn data(bytes: &[u8]) -> Result<Option<&RawValue>, &'static str> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "data must be a JSON text")?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|_| "data must be a JSON text")
}

fn since(s: &Option<pb::Since>) -> Option<Since> {
    s.as_ref().map(|s| Since::At {
        offset: s.offset,
        epoch: (!s.epoch.is_empty()).then(|| s.epoch.clone()),
    })
}

fn some(s: &str) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(s))
}

/// The request a `ClientFrame` holds, borrowing its strings and `data`. A frame without a
/// request (or with one this hub does not know, from a newer client) is `Kind::Unknown`,
/// as an unknown JSON `type` is; on failure, the request id and why.
pub fn request(frame: &pb::ClientFrame) -> Result<Request<'_>, (Option<u64>, String)> {
    let mut r = Request {
        id: frame.id,
        kind: Kind::Unknown,
        channel: None,
        data: None,
        token: None,
        user: None,
        status: None,
        event: None,
        method: None,
        correlation_id: Some(Cow::Borrowed(frame.correlation_id.as_str()))
            .filter(|c| !c.is_empty()),
        since: None,
        limit: None,
        traceparent: Some(frame.traceparent.as_str())
            .filter(|t| !t.is_empty())
            .map(TraceText::Text),
        delta: None,
    };
    let bad = |why: &str| (frame.id, why.to_string());
    match &frame.request {
        None => {}
        Some(Req::Auth(a)) => {
            r.kind = Kind::Auth;
            r.token = some(&a.token);
        }
        Some(Req::Subscribe(s)) => {
            r.kind = Kind::Subscribe;
            r.channel = some(&s.channel);
            r.since = since(&s.since);
            r.delta = Some(Cow::Borrowed(s.delta.as_str())).filter(|d| !d.is_empty());
        }
        Some(Req::Unsubscribe(u)) => {
            r.kind = Kind::Unsubscribe;
            r.channel = some(&u.channel);
        }
        Some(Req::Publish(p)) => {
            r.kind = Kind::Publish;
            r.channel = some(&p.channel);
            r.data = data(&p.data).map_err(bad)?;
        }
        Some(Req::Send(s)) => {
            r.kind = Kind::Send;
            r.user = some(&s.user);
            r.data = data(&s.data).map_err(bad)?;
        }
        Some(Req::Presence(p)) => {
            r.kind = Kind::Presence;
            r.channel = some(&p.channel);
        }
        Some(Req::History(h)) => {
            r.kind = Kind::History;
            r.channel = some(&h.channel);
            r.since = since(&h.since);
            r.limit = h.limit;
        }
        Some(Req::Status(s)) => {
            r.kind = Kind::Status;
            r.status = some(&s.status);
        }
        Some(Req::Refresh(t)) => {
            r.kind = Kind::Refresh;
            r.token = some(&t.token);
        }
        Some(Req::Rpc(c)) => {
            r.kind = Kind::Rpc;
            r.method = some(&c.method);
            r.data = data(&c.data).map_err(bad)?;
        }
        Some(Req::Event(e)) => {
            r.kind = Kind::Event;
            r.event = some(&e.event);
            r.data = data(&e.data).map_err(bad)?;
        }
        Some(Req::Ping(_)) => r.kind = Kind::Ping,
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: Option<u64>, req: Req) -> Vec<u8> {
        pb::ClientFrame {
            id,
            correlation_id: String::new(),
            traceparent: String::new(),
            request: Some(req),
        }
        .encode_to_vec()
    }

    #[test]
    fn a_publish_reads_like_its_json() {
        let bytes = frame(
            Some(4),
            Req::Publish(pb::Publish {
                channel: "t:1".into(),
                data: br#"{ "a" : 1.50 }"#.to_vec(),
            }),
        );
        let f = decode_frame(&bytes).unwrap();
        let r = request(&f).unwrap();
        assert_eq!(r.id, Some(4));
        assert_eq!(r.kind, Kind::Publish);
        assert_eq!(r.channel.as_deref(), Some("t:1"));
        assert_eq!(r.data.unwrap().get(), r#"{ "a" : 1.50 }"#);
        assert_eq!(r.correlation_id, None);
    }

    #[test]
    fn bad_frames() {
        assert!(decode_frame(b"\xff\xff\xff").is_err());
        let f = decode_frame(&frame(
            Some(2),
            Req::Send(pb::Send {
                user: "u".into(),
                data: b"\x00\x01not json".to_vec(),
            }),
        ))
        .unwrap();
        let (id, why) = request(&f).unwrap_err();
        assert_eq!(id, Some(2));
        assert_eq!(why, "data must be a JSON text");
        let empty = decode_frame(&[]).unwrap();
        assert_eq!(request(&empty).unwrap().kind, Kind::Unknown);
        let sub = decode_frame(&frame(
            None,
            Req::Subscribe(pb::Subscribe {
                channel: "log:1".into(),
                since: Some(pb::Since {
                    offset: 5,
                    epoch: "e".into(),
                }),
                delta: String::new(),
            }),
        ))
        .unwrap();
        let r = request(&sub).unwrap();
        assert_eq!(r.since.as_ref().map(Since::offset), Some(5));
        assert_eq!(r.since.as_ref().and_then(Since::epoch), Some("e"));
        assert_eq!(
            (r.delta, r.traceparent.is_none()),
            (None, true),
            "empty is none"
        );
    }

    #[test]
    fn delta_and_traceparent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let bytes = pb::ClientFrame {
            id: Some(1),
            correlation_id: String::new(),
            traceparent: tp.into(),
            request: Some(Req::Subscribe(pb::Subscribe {
                channel: "game:1".into(),
                since: None,
                delta: "fossil".into(),
            })),
        }
        .encode_to_vec();
        let f = decode_frame(&bytes).unwrap();
        let r = request(&f).unwrap();
        assert_eq!(r.delta.as_deref(), Some("fossil"));
        assert!(matches!(r.traceparent, Some(TraceText::Text(t)) if t == tp));
        let mut f = f.clone();
        f.traceparent = "not one".into();
        let r = request(&f).unwrap();
        assert!(
            matches!(r.traceparent, Some(TraceText::Text("not one"))),
            "carried as it came; telemetry ignores it"
        );
    }
}
