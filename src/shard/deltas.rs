//! Fan-out to subscribers that take a channel as deltas (docs/protocol.md, "Deltas"): per
//! publication, its frame is read back once, the delta against the channel's previous
//! publication made once, and each form's frame built at most once, whoever needs it.

use bytes::Bytes;

use super::state::{Deltas, Form};
use crate::protocol::{delta, fossil};

/// The forms of one publication, for a channel with delta subscribers.
pub(super) struct Forms<'p> {
    plain: &'p Bytes,
    message: delta::Message<'p>,
    data: Bytes,
    full: Option<Bytes>,
    delta: Option<Bytes>,
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
            full: None,
            delta,
            sent: 0,
        })
    }

    /// The frame for subscriber `key`, and whether it takes deltas (so is in step once
    /// this frame is queued).
    pub fn pick(&mut self, deltas: &Deltas, channel: &str, key: usize) -> (Bytes, bool) {
        match (deltas.form(channel, key, self.delta.is_some()), &self.delta) {
            (Form::Plain, _) => (self.plain.clone(), false),
            (Form::Delta, Some(delta)) => {
                self.sent += 1;
                (delta.clone(), true)
            }
            _ => (self.full(), true),
        }
    }

    /// The whole publication, `data` as a string, for a delta subscriber.
    pub fn full(&mut self) -> Bytes {
        let (message, data, plain) = (&self.message, &self.data, self.plain);
        let full = self.full.get_or_insert_with(|| {
            delta::frame(message, data, false).unwrap_or_else(|| plain.clone())
        });
        full.clone()
    }

    /// After the fan-out: this publication is the base of the next delta, for `reached`.
    pub fn finish(self, deltas: &mut Deltas, channel: &str, reached: &[usize]) {
        crate::metrics::local(|m| crate::metrics::bump(&m.delta_deliveries, self.sent));
        deltas.advance(channel, self.data, reached);
    }
}
