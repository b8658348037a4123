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
