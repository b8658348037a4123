//! One publication's frame in each wire variant its recipients on this shard speak, each
//! made at most once. A publication reaches a shard as its JSON frame; fan-out asks this
//! cache for the bytes of each subscriber's `Wire`, so a proto variant is transcoded once
//! per publication and shard, however many proto subscribers it has, and when every
//! recipient speaks JSON nothing is made at all: the JSON frame is queued as it came.

use bytes::Bytes;

use crate::protocol::transcode;
use crate::protocol::wire::{Encoding, Wire};

pub struct Variants<'a> {
    json: &'a Bytes,
    proto: Option<Bytes>,
}

impl<'a> Variants<'a> {
    /// The cache of a publication whose JSON frame is `json`.
    pub fn new(json: &'a Bytes) -> Variants<'a> {
        Variants { json, proto: None }
    }

    /// The frame for a recipient of `wire`, made the first time that variant is asked for.
    pub fn get(&mut self, wire: Wire) -> &Bytes {
        match wire.encoding {
            Encoding::Json => self.json,
            // Pings and closes are the same bytes in every encoding.
            Encoding::Proto if !transcode::is_text(self.json) => self.json,
            Encoding::Proto => self.proto.get_or_insert_with(|| {
                crate::metrics::local(|m| crate::metrics::bump(&m.transcodes, 1));
                transcode::to_proto(self.json)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_is_made_once() {
        let json = crate::protocol::message("c", "1", None);
        let mut v = Variants::new(&json);
        assert_eq!(v.get(Wire::JSON).as_ptr(), json.as_ptr(), "JSON as it came");
        let first = v.get(Wire::PROTO).as_ptr();
        assert_eq!(v.get(Wire::PROTO).as_ptr(), first, "proto made once");
        assert_eq!(v.get(Wire::PROTO)[0], 0x82);
    }
}
