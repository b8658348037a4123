//! What a connection speaks on the wire, chosen at the upgrade by `Sec-WebSocket-Protocol`
//! (docs/protocol.md, "Encodings"): JSON text frames (`ringhub.v1.json`, also the default
//! without the header) or protobuf binary frames (`ringhub.v1.proto`, `proto/ringhub/v1`).
//!
//! The hub makes every frame as JSON first; a frame for a proto connection is the JSON
//! frame transcoded (`protocol::proto::transcode`), once per frame and encoding
//! (`shard/variants.rs`), never once per recipient.

/// How a connection's frames are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// Text frames, one JSON object each.
    #[default]
    Json,
    /// Binary frames, one protobuf message each (`ClientFrame` in, `HubFrame` out).
    Proto,
}

/// A connection's wire variant: everything that decides which bytes of a publication it is
/// sent. Three bytes, kept in every connection's record (issue 18: idle memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Wire {
    pub encoding: Encoding,
    /// permessage-deflate (`ws::extensions`): the window, in bits, the hub's frames to it
    /// are compressed with; None without the extension.
    pub deflate: Option<u8>,
}

impl Wire {
    pub const JSON: Wire = Wire {
        encoding: Encoding::Json,
        deflate: None,
    };
    pub const PROTO: Wire = Wire {
        encoding: Encoding::Proto,
        deflate: None,
    };
}

/// The subprotocol names of `Sec-WebSocket-Protocol`.
pub const JSON_SUBPROTOCOL: &str = "ringhub.v1.json";
pub const PROTO_SUBPROTOCOL: &str = "ringhub.v1.proto";

/// What the client's `Sec-WebSocket-Protocol` offer comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// No header: JSON, and the 101 names no subprotocol.
    None,
    /// A subprotocol the hub speaks, the first of the offer that it knows: echoed in the 101.
    Chosen(Encoding),
    /// Only names the hub does not know: JSON, and the 101 names none (the client may then
    /// close, as RFC 6455 §4.1 lets it).
    Unknown,
}

impl Offer {
    /// Reads the header's values (it may be repeated; each a comma-separated list).
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Offer {
        let mut offer = Offer::None;
        for token in values.into_iter().flat_map(|v| v.split(',')) {
            match token.trim() {
                JSON_SUBPROTOCOL => return Offer::Chosen(Encoding::Json),
                PROTO_SUBPROTOCOL => return Offer::Chosen(Encoding::Proto),
                "" => {}
                _ => offer = Offer::Unknown,
            }
        }
        offer
    }

    pub fn encoding(self) -> Encoding {
        match self {
            Offer::Chosen(e) => e,
            Offer::None | Offer::Unknown => Encoding::Json,
        }
    }

    /// The name to echo in the 101, if any.
    pub fn echo(self) -> Option<&'static str> {
        match self {
            Offer::Chosen(Encoding::Json) => Some(JSON_SUBPROTOCOL),
            Offer::Chosen(Encoding::Proto) => Some(PROTO_SUBPROTOCOL),
            Offer::None | Offer::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(Offer::parse([]), Offer::None);
        assert_eq!(
            Offer::parse(["chat, ringhub.v1.proto"]),
            Offer::Chosen(Encoding::Proto)
        );
        assert_eq!(
            Offer::parse(["ringhub.v1.json", "ringhub.v1.proto"]),
            Offer::Chosen(Encoding::Json)
        );
        assert_eq!(Offer::parse(["mqtt"]), Offer::Unknown);
        assert_eq!(Offer::parse(["mqtt"]).encoding(), Encoding::Json);
        assert_eq!(Offer::parse(["mqtt"]).echo(), None);
        assert_eq!(
            Offer::parse([" ringhub.v1.proto "]).echo(),
            Some(PROTO_SUBPROTOCOL)
        );
        // Encoding, and the deflate window (Option<u8>).
        assert_eq!(std::mem::size_of::<Wire>(), 3);
    }
}
