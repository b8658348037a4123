//! The W3C Trace Context `traceparent` (<https://www.w3.org/TR/trace-context/#traceparent-header>):
//! `00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags: 2 hex>`. Read from a client's
//! frame or a caller's header, written into the header sent to a backend. Reading allocates
//! nothing; anything malformed is `None`, never an error.

use serde_json::value::RawValue;

use crate::protocol::TraceText;

/// Length of a version-00 `traceparent`.
pub const LEN: usize = 55;

/// A parsed `traceparent`: 25 bytes, `Copy`, carried along a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// Reads a header value. Versions after 00 are read as 00 (what they add follows a
    /// `-`), as the specification asks; version `ff`, upper-case hex and all-zero ids are
    /// invalid.
    pub fn parse(text: &str) -> Option<TraceParent> {
        let b = text.trim().as_bytes();
        if b.len() < LEN || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex_byte(&b[0..2])?;
        if version == 0xff || (version == 0 && b.len() != LEN) {
            return None;
        }
        if b.len() > LEN && b[LEN] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        for (i, out) in trace_id.iter_mut().enumerate() {
            *out = hex_byte(&b[3 + 2 * i..5 + 2 * i])?;
        }
        for (i, out) in span_id.iter_mut().enumerate() {
            *out = hex_byte(&b[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&b[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Reads a frame's `traceparent` field: a JSON string without escapes (a valid one has
    /// none); any other value is ignored.
    pub fn from_json(raw: &RawValue) -> Option<TraceParent> {
        let text = raw.get().strip_prefix('"')?.strip_suffix('"')?;
        if text.contains('\\') {
            return None;
        }
        TraceParent::parse(text)
    }

    /// Reads the `traceparent` a client frame carried, in either form.
    pub fn from_frame(text: TraceText<'_>) -> Option<TraceParent> {
        match text {
            TraceText::Json(raw) => TraceParent::from_json(raw),
            TraceText::Text(text) => TraceParent::parse(text),
        }
    }

    /// Sampled (flag bit 0)?
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The header value, version 00.
    pub fn header(&self) -> [u8; LEN] {
        let mut out = [b'-'; LEN];
        out[0] = b'0';
        out[1] = b'0';
        write_hex(&self.trace_id, &mut out[3..35]);
        write_hex(&self.span_id, &mut out[36..52]);
        write_hex(&[self.flags], &mut out[53..55]);
        out
    }
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

fn write_hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_and_writes_the_example_of_the_specification() {
        let tp = TraceParent::parse(GOOD).unwrap();
        assert_eq!(tp.trace_id[0], 0x4b);
        assert_eq!(tp.span_id[7], 0xb7);
        assert!(tp.sampled());
        assert_eq!(&tp.header()[..], GOOD.as_bytes());
    }

    #[test]
    fn ignores_what_is_malformed() {
        let bad = [
            "",
            "00",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // 00 with a tail
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é",
        ];
        for text in bad {
            assert_eq!(TraceParent::parse(text), None, "{text:?}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(TraceParent::parse(later).is_some());
    }

    #[test]
    fn a_frame_field_is_a_plain_string_or_nothing() {
        let raw = |s: &str| serde_json::from_str::<Box<RawValue>>(s).unwrap();
        assert!(TraceParent::from_json(&raw(&format!("\"{GOOD}\""))).is_some());
        for other in ["5", "null", "{}", "[\"x\"]", "\"\\u0030\""] {
            assert_eq!(TraceParent::from_json(&raw(other)), None, "{other}");
        }
    }

    #[test]
    fn a_client_frame_field_is_read_in_either_form() {
        let json = serde_json::from_str::<Box<RawValue>>(&format!("\"{GOOD}\"")).unwrap();
        let from_json = TraceParent::from_frame(TraceText::Json(&json)).unwrap();
        assert_eq!(
            TraceParent::from_frame(TraceText::Text(GOOD)),
            Some(from_json)
        );
        assert_eq!(TraceParent::from_frame(TraceText::Text("not one")), None);
    }
}
