//! One publication's frame in each wire variant its recipients on this shard speak, each
//! made at most once. A publication reaches a shard as its JSON frame; fan-out asks this
//! cache for the bytes of each subscriber's `Wire`, so a proto variant is transcoded once
//! per publication and shard, however many proto subscribers it has, and when every
//! recipient speaks JSON nothing is made at all: the JSON frame is queued as it came.
//!
//! Compression (permessage-deflate) is the second dimension: a variant compressed once per
//! (encoding, window bits). The hub compresses without context takeover, so a compressed
//! frame depends only on the frame and the window, never on the connection, and is shared
//! as the same `Bytes` by every recipient with that variant.

use bytes::Bytes;

use crate::config::Config;
use crate::protocol::transcode;
use crate::protocol::wire::{Encoding, Wire};
use crate::ws::{deflate, frame};

/// How the hub compresses (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Compression {
    pub level: u32,
    /// Payloads shorter than this go out plain.
    pub threshold: usize,
}

impl Compression {
    pub fn of(config: &Config) -> Compression {
        Compression {
            level: config.compression_level,
            threshold: config.compression_threshold,
        }
    }
}

pub struct Variants {
    json: Bytes,
    proto: Option<Bytes>,
    compression: Compression,
    /// By encoding (JSON, proto) and window bits (9..=15); `Some(None)`: tried, and it
    /// did not get smaller.
    deflated: [[Option<Option<Bytes>>; 7]; 2],
}

impl Variants {
    /// The cache of a publication whose JSON frame is `json` (shared, not copied).
    pub fn new(json: &Bytes, compression: Compression) -> Variants {
        Variants {
            json: json.clone(),
            proto: None,
            compression,
            deflated: Default::default(),
        }
    }

    /// The frame for a recipient of `wire`, made the first time that variant is asked for.
    pub fn get(&mut self, wire: Wire) -> &Bytes {
        let (index, plain) = match wire.encoding {
            Encoding::Json => (0, &self.json),
            // Pings and closes are the same bytes in every encoding.
            Encoding::Proto if !transcode::is_text(&self.json) => (0, &self.json),
            Encoding::Proto => (
                1,
                &*self.proto.get_or_insert_with(|| {
                    crate::metrics::local(|m| crate::metrics::bump(&m.transcodes, 1));
                    transcode::to_proto(&self.json)
                }),
            ),
        };
        let Some(bits) = wire.deflate else {
            return plain;
        };
        let payload = frame::payload_len(plain);
        if payload < self.compression.threshold.max(1) {
            return plain;
        }
        // A message no longer than the window cannot refer back past it: the largest
        // window's variant serves every window that holds the whole message.
        let bits = if payload <= 1 << bits {
            15
        } else {
            bits.clamp(9, 15)
        };
        let level = self.compression.level;
        self.deflated[index][usize::from(bits - 9)]
            .get_or_insert_with(|| deflate::compress_frame(plain, level, bits))
            .as_ref()
            .unwrap_or(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::Opcode;

    const PLAIN: Compression = Compression {
        level: 6,
        threshold: 100,
    };

    #[test]
    fn each_variant_is_made_once() {
        let json = crate::protocol::message("c", "1", None);
        let mut v = Variants::new(&json, PLAIN);
        assert_eq!(v.get(Wire::JSON).as_ptr(), json.as_ptr(), "JSON as it came");
        let first = v.get(Wire::PROTO).as_ptr();
        assert_eq!(v.get(Wire::PROTO).as_ptr(), first, "proto made once");
        assert_eq!(v.get(Wire::PROTO)[0], 0x82);
    }

    #[test]
    fn one_compression_per_window_and_none_below_the_threshold() {
        let big = frame::encode(
            Opcode::Text,
            "{\"seat\":1,\"stack\":100}".repeat(100).as_bytes(),
        );
        let small = frame::encode(Opcode::Text, b"{\"move\":\"e2e4\",\"seat\":1,\"seat\":1}");
        let wide = Wire {
            deflate: Some(15),
            ..Wire::JSON
        };
        let narrow = Wire {
            deflate: Some(9),
            ..Wire::JSON
        };
        let mut v = Variants::new(&big, PLAIN);
        assert_eq!(v.get(Wire::JSON).as_ptr(), big.as_ptr());
        let a = v.get(wide).clone();
        assert_eq!(a[0], 0xC1, "FIN, RSV1, text");
        assert_eq!(v.get(wide).as_ptr(), a.as_ptr(), "compressed once");
        let c = v.get(narrow).clone();
        assert_eq!(c[0], 0xC1);
        assert_ne!(
            a.as_ptr(),
            c.as_ptr(),
            "a 2 KB frame needs its own 512-byte window"
        );
        let mut v = Variants::new(&small, PLAIN);
        assert_eq!(
            v.get(wide).as_ptr(),
            small.as_ptr(),
            "under the threshold: plain"
        );
    }
}
