//! The frames of channels with history: publications with offsets, `subscribed` with the
//! position and whether the client recovered, `history` answers, `ack` with an offset.

use bytes::{BufMut, Bytes};
use serde::Deserialize;

use super::{open_object, push_json_str};
use crate::ws::frame::{FrameBuf, Opcode};

/// A position in a channel's history, as a client remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Since {
    /// `{"offset":N,"epoch":"E"}` (the epoch may be left out in `history` requests).
    At {
        offset: u64,
        #[serde(default)]
        epoch: Option<String>,
    },
    /// A bare offset (`history` requests, and `?since=N` of the API).
    Offset(u64),
}

impl Since {
    pub fn offset(&self) -> u64 {
        match self {
            Since::At { offset, .. } | Since::Offset(offset) => *offset,
        }
    }

    pub fn epoch(&self) -> Option<&str> {
        match self {
            Since::At { epoch, .. } => epoch.as_deref(),
            Since::Offset(_) => None,
        }
    }
}

/// A publication with its offset: `{"type":"message","channel":..,"data":..,"from":..,"offset":N}`.
pub fn message_at(channel: &str, data: &str, from: Option<&str>, offset: u64) -> Bytes {
    let mut f = FrameBuf::with_capacity(72 + channel.len() + data.len() + from.map_or(0, str::len));
    let b = f.payload_mut();
    b.extend_from_slice(br#"{"type":"message","channel":"#);
    push_json_str(b, channel);
    b.extend_from_slice(br#","data":"#);
    b.extend_from_slice(data.as_bytes());
    if let Some(from) = from {
        b.extend_from_slice(br#","from":"#);
        push_json_str(b, from);
    }
    b.extend_from_slice(br#","offset":"#);
    b.extend_from_slice(offset.to_string().as_bytes());
    b.put_u8(b'}');
    f.finish(Opcode::Text)
}

/// `subscribed` on a channel with history: where it stands, and (when the client asked
/// with `since`) whether everything it missed follows.
pub fn subscribed(
    id: Option<u64>,
    channel: &str,
    offset: u64,
    epoch: &str,
    recovered: Option<bool>,
) -> Bytes {
    let mut f = FrameBuf::with_capacity(96 + channel.len());
    let b = f.payload_mut();
    open_object(b, id);
    b.extend_from_slice(br#""type":"subscribed","channel":"#);
    push_json_str(b, channel);
    b.extend_from_slice(format!(r#","offset":{offset},"epoch":"#).as_bytes());
    push_json_str(b, epoch);
    if let Some(r) = recovered {
        b.extend_from_slice(format!(r#","recovered":{r}"#).as_bytes());
    }
    b.put_u8(b'}');
    f.finish(Opcode::Text)
}

/// One stored publication, for `history` answers.
pub struct Publication<'a> {
    pub offset: u64,
    pub from: Option<&'a str>,
    pub ts: u64,
    pub data: &'a str,
}

/// The JSON array of publications (the API answer reuses it).
pub fn publications_json<'a>(pubs: impl IntoIterator<Item = Publication<'a>>) -> String {
    let mut b = bytes::BytesMut::new();
    b.put_u8(b'[');
    for (i, p) in pubs.into_iter().enumerate() {
        if i > 0 {
            b.put_u8(b',');
        }
        b.extend_from_slice(format!(r#"{{"offset":{}"#, p.offset).as_bytes());
        if let Some(from) = p.from {
            b.extend_from_slice(br#","from":"#);
            push_json_str(&mut b, from);
        }
        b.extend_from_slice(format!(r#","ts":{},"data":"#, p.ts).as_bytes());
        b.extend_from_slice(p.data.as_bytes());
        b.put_u8(b'}');
    }
    b.put_u8(b']');
    String::from_utf8(b.to_vec()).expect("JSON is UTF-8")
}

/// `{"id":..,"type":"history","channel":..,"epoch":..,"publications":[..]}`.
pub fn history(id: Option<u64>, channel: &str, epoch: &str, publications: &str) -> Bytes {
    let mut f = FrameBuf::with_capacity(64 + channel.len() + publications.len());
    let b = f.payload_mut();
    open_object(b, id);
    b.extend_from_slice(br#""type":"history","channel":"#);
    push_json_str(b, channel);
    b.extend_from_slice(br#","epoch":"#);
    push_json_str(b, epoch);
    b.extend_from_slice(br#","publications":"#);
    b.extend_from_slice(publications.as_bytes());
    b.put_u8(b'}');
    f.finish(Opcode::Text)
}

/// `{"id":..,"type":"ack","offset":N}`.
pub fn ack_offset(id: Option<u64>, offset: u64) -> Bytes {
    let mut f = FrameBuf::with_capacity(48);
    let b = f.payload_mut();
    open_object(b, id);
    b.extend_from_slice(format!(r#""type":"ack","offset":{offset}}}"#).as_bytes());
    f.finish(Opcode::Text)
}

/// Why the hub ended a subscription on its own: publications were missed and can no longer
/// be recovered (the history lost them, or its epoch changed). docs/protocol.md §10.
pub const RECOVERY_FAILED: &str = "recovery_failed";

/// `{"type":"unsubscribed","channel":..,"reason":"recovery_failed"}` (unsolicited): the
/// client resubscribes with `since` and learns where the channel stands.
pub fn unsubscribed_lost(channel: &str) -> Bytes {
    let mut f = FrameBuf::with_capacity(64 + channel.len());
    let b = f.payload_mut();
    b.extend_from_slice(br#"{"type":"unsubscribed","channel":"#);
    push_json_str(b, channel);
    b.extend_from_slice(format!(r#","reason":"{RECOVERY_FAILED}"}}"#).as_bytes());
    f.finish(Opcode::Text)
}
