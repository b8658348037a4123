//! Fan-out to subscribers that take a channel as deltas (docs/protocol.md, "Deltas"): per
//! publication, its frame is read back once, the delta against the channel's previous
//! publication made once, and each form's frame built at most once per wire variant
//! (`Variants`: compression), whoever needs it.

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
    /// The whole publication with `data` as a string, and the delta, as JSON frames.
    full: Option<Bytes>,
    delta: Option<Bytes>,
    /// Their frames per wire variant, made once each: (is the delta, wire, bytes).
    made: Vec<(bool, Wire, Bytes)>,
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
            .and_then(|d| delta::frame(&message, &d, true));
        Some(Forms {
            plain,
            message,
            data,
            compression,
            full: None,
            delta,
            made: Vec::new(),
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
        match deltas.form(channel, key, self.delta.is_some()) {
            Form::Plain => None,
            Form::Delta => {
                self.sent += 1;
                Some((self.variant(true, wire), true))
            }
            Form::Full => Some((self.full(wire), true)),
        }
    }

    /// The whole publication, `data` as a string, for a delta subscriber of `wire`.
    pub fn full(&mut self, wire: Wire) -> Bytes {
        self.variant(false, wire)
    }

    fn variant(&mut self, is_delta: bool, wire: Wire) -> Bytes {
        if let Some((.., bytes)) = self
            .made
            .iter()
            .find(|(d, w, _)| *d == is_delta && *w == wire)
        {
            return bytes.clone();
        }
        let json = match (is_delta, &self.delta) {
            (true, Some(delta)) => delta.clone(),
            _ => {
                let (message, data, plain) = (&self.message, &self.data, self.plain);
                let full = self.full.get_or_insert_with(|| {
                    delta::frame(message, data, false).unwrap_or_else(|| plain.clone())
                });
                full.clone()
            }
        };
        let bytes = Variants::new(&json, self.compression).get(wire).clone();
        self.made.push((is_delta, wire, bytes.clone()));
        bytes
    }

    /// After the fan-out: this publication is the base of the next delta, for `reached`.
    pub fn finish(self, deltas: &mut Deltas, channel: &str, reached: &[usize]) {
        crate::metrics::local(|m| crate::metrics::bump(&m.delta_deliveries, self.sent));
        deltas.advance(channel, self.data, reached);
    }
}
