//! Fan-out to subscribers that take a channel as deltas (docs/protocol.md, "Deltas"): per
//! publication, its frame is read back once, the delta against the channel's previous
//! publication made once, and each form's frame built at most once per wire variant
//! (`Variants`: encoding and compression), whoever needs it: a proto delta subscriber's
//! frame is the delta's JSON frame transcoded, once per publication and shard.

use bytes::Bytes;

use super::state::{Deltas, Form};
use super::variants::{Compression, Variants};
use crate::protocol::wire::Wire;
use crate::protocol::{delta, fossil};

/// The forms of one publication, for a channel with delta subscribers.
pub(super) struct Forms<'p> {
    plain: &'p Bytes,
    message: delta::Message<'p>,
    data: Bytes,
    compression: Compression,
    /// The whole publication with `data` as a string, and the delta: each made as its JSON
    /// frame once, with its frames per wire variant (encoding, compression) made at most
    /// once each by its `Variants`.
    full: Option<Variants>,
    delta: Option<Variants>,
    /// Deliveries made as a delta.
    sent: u64,
}

impl<'p> Forms<'p> {
    /// None when the frame is not a publication (`join`, `leave`, ...): it goes as it is.
    pub fn new(
        deltas: &Deltas,
        channel: &str,
        plain: &'p Bytes,
        payload: &'p Bytes,
        compression: Compression,
    ) -> Option<Self> {
        let message = delta::parse(payload)?;
        let data = payload.slice_ref(message.data.get().as_bytes());
        let delta = deltas
            .base(channel)
            .map(|base| fossil::create(base, &data))
            .filter(|d| d.len() < data.len())
            .and_then(|d| delta::frame(&message, &d, true))
            .map(|json| Variants::new(&json, compression));
        Some(Forms {
            plain,
            message,
            data,
            compression,
            full: None,
            delta,
            sent: 0,
        })
    }

    /// The frame for subscriber `key` and whether it takes deltas (so is in step once this
    /// frame is queued); None for one that does not: it gets the publication as published.
    pub fn pick(
        &mut self,
        deltas: &Deltas,
        channel: &str,
        key: usize,
        wire: Wire,
    ) -> Option<(Bytes, bool)> {
        match (
            deltas.form(channel, key, self.delta.is_some()),
            &mut self.delta,
        ) {
            (Form::Plain, _) => None,
            (Form::Delta, Some(delta)) => {
                self.sent += 1;
                Some((delta.get(wire).clone(), true))
            }
            (Form::Full | Form::Delta, _) => Some((self.full(wire), true)),
        }
    }

    /// The whole publication, `data` as a string, for a delta subscriber of `wire`.
    pub fn full(&mut self, wire: Wire) -> Bytes {
        let (message, data, plain) = (&self.message, &self.data, self.plain);
        let compression = self.compression;
        self.full
            .get_or_insert_with(|| {
                let json = delta::frame(message, data, false).unwrap_or_else(|| plain.clone());
                Variants::new(&json, compression)
            })
            .get(wire)
            .clone()
    }

    /// After the fan-out: this publication is the base of the next delta, for `reached`.
    pub fn finish(self, deltas: &mut Deltas, channel: &str, reached: &[usize]) {
        crate::metrics::local(|m| crate::metrics::bump(&m.delta_deliveries, self.sent));
        deltas.advance(channel, self.data, reached);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prost::Message as _;

    use super::*;
    use crate::protocol::proto::pb::{self, hub_frame::Frame};
    use crate::ws::frame::payload_of;

    const COMPRESSION: Compression = Compression {
        level: 6,
        threshold: 100,
    };

    /// A 2 KB publication, `pot` changing.
    fn publication(pot: u32) -> Bytes {
        let data = format!(r#"{{"pot":{pot},"seats":"{}"}}"#, "ab".repeat(1000));
        crate::protocol::message("game:1", &data, None)
    }

    fn proto_message(frame: &Bytes) -> pb::Message {
        match pb::HubFrame::decode(&payload_of(frame)[..]).unwrap().frame {
            Some(Frame::Message(m)) => m,
            other => panic!("a message: {other:?}"),
        }
    }

    /// Three delta subscribers of each wire: each form's frame is made once per variant and
    /// shared, whole first, then the delta.
    #[test]
    fn each_form_once_per_variant() {
        let mut deltas = Deltas::default();
        let channel: Arc<str> = "game:1".into();
        for key in 0..6 {
            deltas.join(&channel, key);
        }
        let wire = |key| match key % 3 {
            0 => Wire::JSON,
            1 => Wire::PROTO,
            _ => Wire {
                deflate: Some(15),
                ..Wire::PROTO
            },
        };
        let mut base = Vec::new();
        for pot in 1..=2 {
            let plain = publication(pot);
            let payload = payload_of(&plain);
            let mut forms = Forms::new(&deltas, "game:1", &plain, &payload, COMPRESSION).unwrap();
            let frames: Vec<Bytes> = (0..6)
                .map(|key| forms.pick(&deltas, "game:1", key, wire(key)).unwrap().0)
                .collect();
            for key in 0..3 {
                assert_eq!(frames[key].as_ptr(), frames[key + 3].as_ptr(), "shared");
            }
            if pot == 1 {
                assert_eq!(frames[2][0], 0xC2, "FIN, RSV1, binary: compressed");
            }
            let m = proto_message(&frames[1]);
            let text = crate::protocol::delta::parse(&payload).unwrap().data.get();
            let rebuilt = match m.delta {
                Some(false) => m.data.clone(),
                Some(true) => fossil::apply(&base, &m.data).unwrap(),
                None => panic!("no delta flag"),
            };
            assert_eq!((m.delta, &rebuilt[..]), (Some(pot > 1), text.as_bytes()));
            assert!(pot == 1 || m.data.len() < 100, "a small delta");
            base = rebuilt;
            forms.finish(&mut deltas, "game:1", &[0, 1, 2, 3, 4, 5]);
        }
    }
}
