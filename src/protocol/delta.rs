//! The publications of a subscription taken as deltas (docs/protocol.md, "Deltas"): the
//! frame as published is read back once per publication, and its `data` sent as a JSON
//! string, whole or as a Fossil delta against the previous one, with `"delta"` saying which.

use std::borrow::Cow;

use bytes::{BufMut, Bytes};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::push_json_str;
use crate::ws::frame::{FrameBuf, Opcode};

/// A `message` frame's parts, read back from its payload.
#[derive(Debug, Deserialize)]
pub struct Message<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
    #[serde(borrow)]
    pub data: &'a RawValue,
    #[serde(default, borrow)]
    pub from: Option<Cow<'a, str>>,
    #[serde(default)]
    pub offset: Option<u64>,
}

/// The parts of a publication's frame payload; None for anything but a `message`.
pub fn parse(payload: &[u8]) -> Option<Message<'_>> {
    serde_json::from_slice::<Message>(payload)
        .ok()
        .filter(|m| m.kind == "message")
}

/// The publication with `data` (its payload, or a delta when `delta`) as a string; None
/// when `data` is not UTF-8 (a delta may cut a character in two: then the whole goes).
pub fn frame(m: &Message<'_>, data: &[u8], delta: bool) -> Option<Bytes> {
    let data = std::str::from_utf8(data).ok()?;
    let extra = m.from.as_deref().map_or(0, str::len) + data.len() / 8;
    let mut f = FrameBuf::with_capacity(96 + m.channel.len() + data.len() + extra);
    let b = f.payload_mut();
    b.extend_from_slice(br#"{"type":"message","channel":"#);
    push_json_str(b, &m.channel);
    b.extend_from_slice(br#","data":"#);
    push_json_str(b, data);
    b.extend_from_slice(if delta {
        br#","delta":true"#
    } else {
        br#","delta":false"#
    });
    if let Some(from) = &m.from {
        b.extend_from_slice(br#","from":"#);
        push_json_str(b, from);
    }
    if let Some(offset) = m.offset {
        b.extend_from_slice(br#","offset":"#);
        b.extend_from_slice(offset.to_string().as_bytes());
    }
    b.put_u8(b'}');
    Some(f.finish(Opcode::Text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{message, message_at};
    use crate::ws::frame::payload_of;

    #[test]
    fn reads_back_what_the_hub_wrote() {
        let f = payload_of(&message_at("t:1", r#"{"pot":5}"#, Some("ann"), 9));
        let m = parse(&f).unwrap();
        assert_eq!(
            (&*m.channel, m.data.get(), m.from.as_deref(), m.offset),
            ("t:1", r#"{"pot":5}"#, Some("ann"), Some(9))
        );
        let f = payload_of(&message("t:\"2", "[1]", None));
        let m = parse(&f).unwrap();
        assert_eq!((&*m.channel, m.offset), ("t:\"2", None));
        assert!(parse(br#"{"type":"join","channel":"t","user":"u"}"#).is_none());
        assert!(parse(b"not json").is_none());
    }

    #[test]
    fn data_as_a_string() {
        let f = payload_of(&message_at("t:1", r#"{"pot":5}"#, Some("ann"), 9));
        let m = parse(&f).unwrap();
        let out = payload_of(&frame(&m, m.data.get().as_bytes(), false).unwrap());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"], r#"{"pot":5}"#);
        assert_eq!(v["delta"], false);
        assert_eq!(
            (v["from"].as_str(), v["offset"].as_u64()),
            (Some("ann"), Some(9))
        );
        assert!(frame(&m, b"\xe2\x82", true).is_none(), "half a character");
    }
}
