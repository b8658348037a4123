//! The compressed variants of one outgoing frame (permessage-deflate), made at most once
//! per window size, by the first recipient that needs each, and shared as the same `Bytes`
//! by all the others: fan-out stays encode-once with compression. The hub compresses
//! without context takeover, so a compressed frame depends only on the frame and the
//! window, never on the connection.

use bytes::Bytes;

use crate::config::Config;
use crate::ws::deflate;
use crate::ws::extensions::Deflate;
use crate::ws::frame;

pub(super) struct Deflated<'a> {
    plain: &'a Bytes,
    payload: usize,
    level: u32,
    threshold: usize,
    /// By window bits 9..=15; `Some(None)`: tried, and it did not get smaller.
    by_bits: [Option<Option<Bytes>>; 7],
}

impl<'a> Deflated<'a> {
    pub(super) fn new(plain: &'a Bytes, config: &Config) -> Deflated<'a> {
        Deflated {
            plain,
            payload: frame::payload_of(plain).len(),
            level: config.compression_level,
            threshold: config.compression_threshold,
            by_bits: Default::default(),
        }
    }

    /// The frame as a connection with `deflate` (or without compression) gets it.
    pub(super) fn for_conn(&mut self, deflate: Option<Deflate>) -> Bytes {
        let Some(deflate) = deflate else {
            return self.plain.clone();
        };
        if self.payload < self.threshold.max(1) {
            return self.plain.clone();
        }
        // A message no longer than the window cannot refer back past it: the largest
        // window's variant serves every window that holds the whole message.
        let bits = if self.payload <= 1 << deflate.server_bits {
            15
        } else {
            deflate.server_bits.clamp(9, 15)
        };
        let (plain, level) = (self.plain, self.level);
        self.by_bits[usize::from(bits - 9)]
            .get_or_insert_with(|| deflate::compress_frame(plain, level, bits))
            .clone()
            .unwrap_or_else(|| plain.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::Opcode;

    #[test]
    fn one_compression_per_window_and_none_below_the_threshold() {
        let config = Config {
            compression_threshold: 100,
            ..Config::default()
        };
        let big = frame::encode(
            Opcode::Text,
            "{\"seat\":1,\"stack\":100}".repeat(100).as_bytes(),
        );
        let small = frame::encode(Opcode::Text, b"{\"move\":\"e2e4\",\"seat\":1,\"seat\":1}");
        let wide = Deflate {
            server_bits: 15,
            client_no_context: true,
        };
        let narrow = Deflate {
            server_bits: 9,
            ..wide
        };
        let mut d = Deflated::new(&big, &config);
        assert_eq!(d.for_conn(None), big);
        let a = d.for_conn(Some(wide));
        let b = d.for_conn(Some(wide));
        assert_eq!(a[0], 0xC1);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same buffer, compressed once");
        let c = d.for_conn(Some(narrow));
        assert_eq!(c[0], 0xC1);
        assert_ne!(
            a.as_ptr(),
            c.as_ptr(),
            "a 2 KB frame needs its own 512-byte-window variant"
        );
        let mut d = Deflated::new(&small, &config);
        assert_eq!(d.for_conn(Some(wide)), small);
    }
}
