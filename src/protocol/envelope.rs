//! The relay's wire format: what one instance publishes on Redis for the others.
//!
//! ```text
//! "RH1" kind:u8 origin_len:u8 origin cause_len:u8 cause target_len:u16be target payload...
//! ```
//!
//! Its layout, and why it is kept rather than replaced by a protobuf message, are in
//! docs/relay.md ("The envelope"); `the_layout_is_pinned` holds it to that page.
//!
//! `origin` is the sending instance (an instance skips its own messages, so nothing is
//! delivered twice); `cause` the correlation id that caused it (may be empty); `target` a
//! channel, user or query id; `payload` the rest, as is: for publications the final JSON
//! of the `message` frame, so a receiving instance frames it without parsing `data`.

use bytes::{BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 3] = b"RH1";

/// What a relay message asks of the receiving instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A publication: target channel, payload the `message` JSON.
    Message,
    /// A direct message: target user, payload the `direct` JSON.
    Direct,
    /// `broadcast_all`: payload the `broadcast` JSON.
    BroadcastAll,
    /// Disconnect a user: target user, payload the reason.
    Disconnect,
    /// A revocation rule: payload its JSON.
    Revoke,
    /// Server-side subscribe / unsubscribe: target user, payload the channel.
    Subscribe,
    Unsubscribe,
    /// A presence query: target channel, payload the query id.
    PresenceQuery,
    /// A presence answer: target the query id, payload the users as JSON.
    PresenceAnswer,
    /// A mute (payload its JSON), and a mute lifted (target user, payload its scope).
    Mute,
    Unmute,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Message => b'm',
            Kind::Direct => b'd',
            Kind::BroadcastAll => b'b',
            Kind::Disconnect => b'x',
            Kind::Revoke => b'r',
            Kind::Subscribe => b's',
            Kind::Unsubscribe => b'u',
            Kind::PresenceQuery => b'q',
            Kind::PresenceAnswer => b'a',
            Kind::Mute => b'M',
            Kind::Unmute => b'U',
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'm' => Kind::Message,
            b'd' => Kind::Direct,
            b'b' => Kind::BroadcastAll,
            b'x' => Kind::Disconnect,
            b'r' => Kind::Revoke,
            b's' => Kind::Subscribe,
            b'u' => Kind::Unsubscribe,
            b'q' => Kind::PresenceQuery,
            b'a' => Kind::PresenceAnswer,
            b'M' => Kind::Mute,
            b'U' => Kind::Unmute,
            _ => return None,
        })
    }
}

/// A decoded relay message; the fields borrow from the received bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub kind: Kind,
    pub origin: &'a str,
    pub cause: &'a str,
    pub target: &'a str,
    pub payload: &'a [u8],
}

/// Encodes a relay message. Origins and causes longer than 255 bytes are cut (they are
/// bounded well below that by the configuration and the API).
pub fn encode(kind: Kind, origin: &str, cause: &str, target: &str, payload: &[u8]) -> Bytes {
    let origin = cut(origin, 255);
    let cause = cut(cause, 255);
    let target = cut(target, u16::MAX as usize);
    let mut b =
        BytesMut::with_capacity(9 + origin.len() + cause.len() + target.len() + payload.len());
    b.put_slice(MAGIC);
    b.put_u8(kind.byte());
    b.put_u8(origin.len() as u8);
    b.put_slice(origin.as_bytes());
    b.put_u8(cause.len() as u8);
    b.put_slice(cause.as_bytes());
    b.put_u16(target.len() as u16);
    b.put_slice(target.as_bytes());
    b.put_slice(payload);
    b.freeze()
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Decodes a relay message; None for anything malformed.
pub fn decode(bytes: &[u8]) -> Option<Envelope<'_>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (&kind, rest) = rest.split_first()?;
    let kind = Kind::from_byte(kind)?;
    let (origin, rest) = short_str(rest)?;
    let (cause, rest) = short_str(rest)?;
    if rest.len() < 2 {
        return None;
    }
    let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
    let rest = &rest[2..];
    if rest.len() < len {
        return None;
    }
    let target = std::str::from_utf8(&rest[..len]).ok()?;
    Some(Envelope {
        kind,
        origin,
        cause,
        target,
        payload: &rest[len..],
    })
}

/// The offset of a sequenced publication, from a `Message` payload: its JSON ends with
/// `,"offset":N}` (`protocol::message_at`).
pub fn message_offset(json: &[u8]) -> Option<u64> {
    let body = json.strip_suffix(b"}")?;
    let at = body.len() - body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let digits = std::str::from_utf8(&body[at..]).ok()?;
    body[..at]
        .ends_with(br#","offset":"#)
        .then(|| digits.parse().ok())?
}

fn short_str(b: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, rest) = b.split_first()?;
    let len = len as usize;
    if rest.len() < len {
        return None;
    }
    Some((std::str::from_utf8(&rest[..len]).ok()?, &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let b = encode(
            Kind::Message,
            "inst-1",
            "corr",
            "table:42",
            br#"{"type":"message"}"#,
        );
        let e = decode(&b).unwrap();
        assert_eq!(
            e,
            Envelope {
                kind: Kind::Message,
                origin: "inst-1",
                cause: "corr",
                target: "table:42",
                payload: br#"{"type":"message"}"#,
            }
        );
        let b = encode(Kind::Direct, "i", "", "user\nwith newline", b"");
        assert_eq!(decode(&b).unwrap().target, "user\nwith newline");
    }

    /// The layout of docs/relay.md, byte by byte. The history script of
    /// `relay/history.rs` (`APPEND`) writes the same layout in Lua, with an empty origin
    /// and cause: this test decodes those bytes too. Changing the layout means changing
    /// both, and the document.
    #[test]
    fn the_layout_is_pinned() {
        let b = encode(Kind::Message, "i-1", "c9", "table:42", b"{}");
        let mut want = b"RH1m".to_vec();
        want.extend_from_slice(b"\x03i-1");
        want.extend_from_slice(b"\x02c9");
        want.extend_from_slice(b"\x00\x08table:42");
        want.extend_from_slice(b"{}");
        assert_eq!(&b[..], &want[..]);
        let kinds = [
            (Kind::Message, b'm'),
            (Kind::Direct, b'd'),
            (Kind::BroadcastAll, b'b'),
            (Kind::Disconnect, b'x'),
            (Kind::Revoke, b'r'),
            (Kind::Subscribe, b's'),
            (Kind::Unsubscribe, b'u'),
            (Kind::PresenceQuery, b'q'),
            (Kind::PresenceAnswer, b'a'),
            (Kind::Mute, b'M'),
            (Kind::Unmute, b'U'),
        ];
        for (kind, byte) in kinds {
            assert_eq!(encode(kind, "", "", "", b"")[3], byte, "{kind:?}");
        }
        // What the Lua script publishes: 'RH1m', two empty strings, the target's length
        // in two bytes (high, low), the target, the JSON.
        let target = "x".repeat(300);
        let mut lua = b"RH1m\x00\x00".to_vec();
        lua.extend_from_slice(&[(300 / 256) as u8, (300 % 256) as u8]);
        lua.extend_from_slice(target.as_bytes());
        lua.extend_from_slice(br#"{"type":"message","offset":7}"#);
        let e = decode(&lua).unwrap();
        assert_eq!((e.kind, e.origin, e.cause), (Kind::Message, "", ""));
        assert_eq!(e.target, target);
        assert_eq!(message_offset(e.payload), Some(7));
    }

    #[test]
    fn offsets_from_the_tail() {
        let offset = |json: &[u8]| message_offset(json);
        assert_eq!(
            offset(br#"{"type":"message","data":1,"offset":42}"#),
            Some(42)
        );
        assert_eq!(offset(br#"{"type":"message","data":{"offset":42}}"#), None);
        assert_eq!(offset(br#"{"type":"message","data":[1]}"#), None);
    }

    #[test]
    fn malformed_is_none() {
        let good = encode(Kind::Revoke, "i", "c", "t", b"{}");
        for n in 0..good.len() - 2 {
            assert!(decode(&good[..n]).is_none(), "prefix of {n} bytes");
        }
        assert!(decode(b"RH1z\x00\x00\x00\x00").is_none());
        assert!(decode(b"{\"op\":\"publish\"}").is_none());
    }
}
