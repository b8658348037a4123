//! Turns the bytes a client sends into whole messages and control frames: unmasking,
//! reassembling fragments (with control frames interleaved), checking UTF-8 as fragments
//! arrive, inflating compressed messages (permessage-deflate, when negotiated), and
//! enforcing `max_message_size` (on the inflated size too, as it inflates).
//!
//! The decoder owns no buffer while a connection is idle: input is parsed where it lies (the
//! shard's read buffer), and only an incomplete frame's tail or an unfinished fragmented
//! message is kept, in vectors that are freed as soon as they are consumed.

use super::deflate::{InflateError, Inflater};
use super::frame::{self, FrameError, Opcode};

/// A complete unit handed to the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong,
    /// The client's close frame: its code and reason, if any.
    Close(Option<(u16, &'a str)>),
}

/// Why the stream cannot go on; each maps to a close code (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// 1002.
    Protocol(&'static str),
    /// 1007.
    BadUtf8,
    /// 1009.
    TooLarge,
}

impl DecodeError {
    pub fn close_code(self) -> u16 {
        match self {
            DecodeError::Protocol(_) => 1002,
            DecodeError::BadUtf8 => 1007,
            DecodeError::TooLarge => 1009,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Protocol(why) => why,
            DecodeError::BadUtf8 => "invalid UTF-8",
            DecodeError::TooLarge => "message too large",
        }
    }
}

impl From<FrameError> for DecodeError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooLarge => DecodeError::TooLarge,
            FrameError::Unmasked => DecodeError::Protocol("unmasked client frame"),
            FrameError::BadControl => DecodeError::Protocol("invalid control frame"),
            FrameError::Reserved | FrameError::Incomplete => {
                DecodeError::Protocol("reserved bits or opcode")
            }
        }
    }
}

/// Limits a decoder enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message: usize,
    pub max_fragments: usize,
}

struct Fragmented {
    text: bool,
    /// Its first frame had RSV1: `data` holds the inflated bytes.
    compressed: bool,
    data: Vec<u8>,
    fragments: usize,
    /// Bytes of `data` known to be valid UTF-8 so far (text only).
    checked: usize,
}

/// Per-connection decoding state.
#[derive(Default)]
pub struct Decoder {
    tail: Vec<u8>,
    message: Option<Box<Fragmented>>,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message. Boxed: the
    /// decoder of a connection without it stays as small as before.
    inflater: Option<Box<Inflater>>,
}

impl From<InflateError> for DecodeError {
    fn from(e: InflateError) -> Self {
        match e {
            InflateError::TooLarge => DecodeError::TooLarge,
            InflateError::Corrupt => DecodeError::Protocol("invalid compressed data"),
        }
    }
}

/// What the event callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

impl Decoder {
    /// Bytes held between reads (for memory accounting).
    pub fn held(&self) -> usize {
        self.tail.capacity() + self.message.as_ref().map_or(0, |m| m.data.capacity())
    }

    /// permessage-deflate was negotiated: compressed messages (RSV1) are accepted from now
    /// on. `client_no_context` is the client's promise to compress each message afresh.
    pub fn enable_deflate(&mut self, client_no_context: bool) {
        self.inflater = Some(Box::new(Inflater::new(client_no_context)));
    }

    pub fn deflate_enabled(&self) -> bool {
        self.inflater.is_some()
    }

    /// An inflate state is held (with context takeover, for the connection's life).
    pub fn holds_inflate_state(&self) -> bool {
        self.inflater.as_ref().is_some_and(|i| i.holds_state())
    }

    /// Decodes `input` (which it may unmask in place), calling `on` for each event until it
    /// answers `Stop`. Bytes not yet consumed (an incomplete frame, or what follows a `Stop`)
    /// are kept for the next call.
    pub fn feed(
        &mut self,
        input: &mut [u8],
        limits: Limits,
        on: &mut dyn FnMut(Event<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        if self.tail.is_empty() {
            let (used, flow) = self.process(input, limits, on)?;
            if used < input.len() {
                self.tail = input[used..].to_vec();
            }
            return Ok(flow);
        }
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(input);
        let (used, flow) = self.process(&mut buf, limits, on)?;
        if used < buf.len() {
            buf.drain(..used);
            self.tail = buf;
        }
        Ok(flow)
    }

    /// Keeps bytes read before this decoder's turn (frames pipelined behind the HTTP head),
    /// to be decoded by the next `feed`.
    pub fn stash(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
    }

    /// Bytes are waiting to be decoded.
    pub fn has_pending(&self) -> bool {
        !self.tail.is_empty()
    }

    fn process(
        &mut self,
        buf: &mut [u8],
        limits: Limits,
        on: &mut dyn FnMut(Event<'_>) -> Flow,
    ) -> Result<(usize, Flow), DecodeError> {
        let mut at = 0;
        loop {
            let head = match frame::parse_head(&buf[at..], limits.max_message) {
                Ok(h) => h,
                Err(FrameError::Incomplete) => return Ok((at, Flow::Continue)),
                Err(e) => return Err(e.into()),
            };
            if buf.len() - at < head.frame_len() {
                return Ok((at, Flow::Continue));
            }
            let payload = &mut buf[at + head.header_len..at + head.frame_len()];
            frame::unmask(payload, head.mask, 0);
            at += head.frame_len();
            if self.frame(head, payload, limits, on)? == Flow::Stop {
                return Ok((at, Flow::Stop));
            }
        }
    }

    fn frame(
        &mut self,
        head: frame::Head,
        payload: &[u8],
        limits: Limits,
        on: &mut dyn FnMut(Event<'_>) -> Flow,
    ) -> Result<Flow, DecodeError> {
        let (fin, opcode) = (head.fin, head.opcode);
        // RSV1 is permessage-deflate's mark, on a message's first frame only (RFC 7692 §6).
        if head.rsv1 && (self.inflater.is_none() || opcode == Opcode::Continuation) {
            return Err(DecodeError::Protocol("reserved bits or opcode"));
        }
        match opcode {
            Opcode::Ping => Ok(on(Event::Ping(payload))),
            Opcode::Pong => Ok(on(Event::Pong)),
            Opcode::Close => on_close(payload, on),
            Opcode::Text | Opcode::Binary if self.message.is_some() => Err(DecodeError::Protocol(
                "new message before the last one finished",
            )),
            Opcode::Text | Opcode::Binary if fin && head.rsv1 => {
                let mut data = Vec::new();
                self.inflate(payload, true, &mut data, limits.max_message)?;
                Ok(if opcode == Opcode::Text {
                    on(Event::Text(
                        std::str::from_utf8(&data).map_err(|_| DecodeError::BadUtf8)?,
                    ))
                } else {
                    on(Event::Binary(&data))
                })
            }
            Opcode::Text | Opcode::Binary if fin => Ok(if opcode == Opcode::Text {
                on(Event::Text(
                    std::str::from_utf8(payload).map_err(|_| DecodeError::BadUtf8)?,
                ))
            } else {
                on(Event::Binary(payload))
            }),
            Opcode::Text | Opcode::Binary => {
                let mut m = Box::new(Fragmented {
                    text: opcode == Opcode::Text,
                    compressed: head.rsv1,
                    data: Vec::with_capacity(if head.rsv1 { 0 } else { payload.len() }),
                    fragments: 0,
                    checked: 0,
                });
                self.append(&mut m, payload, false, limits)?;
                self.message = Some(m);
                Ok(Flow::Continue)
            }
            Opcode::Continuation => {
                let Some(mut m) = self.message.take() else {
                    return Err(DecodeError::Protocol("continuation without a message"));
                };
                self.append(&mut m, payload, fin, limits)?;
                self.message = Some(m);
                if !fin {
                    return Ok(Flow::Continue);
                }
                let m = self.message.take().expect("checked above");
                Ok(if m.text {
                    // validated by `append`
                    on(Event::Text(
                        std::str::from_utf8(&m.data).map_err(|_| DecodeError::BadUtf8)?,
                    ))
                } else {
                    on(Event::Binary(&m.data))
                })
            }
        }
    }
}

impl Decoder {
    fn inflate(
        &mut self,
        payload: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), DecodeError> {
        match self.inflater.as_mut() {
            Some(inflater) => Ok(inflater.inflate(payload, last, out, max)?),
            None => Err(DecodeError::Protocol("reserved bits or opcode")),
        }
    }

    /// Adds one fragment (inflated, for a compressed message) to `m`.
    fn append(
        &mut self,
        m: &mut Fragmented,
        payload: &[u8],
        fin: bool,
        limits: Limits,
    ) -> Result<(), DecodeError> {
        m.fragments += 1;
        if m.fragments > limits.max_fragments {
            return Err(DecodeError::TooLarge);
        }
        if m.compressed {
            self.inflate(payload, fin, &mut m.data, limits.max_message)?;
        } else if m.data.len() + payload.len() > limits.max_message {
            return Err(DecodeError::TooLarge);
        } else {
            m.data.extend_from_slice(payload);
        }
        check_utf8(m, fin)
    }
}

fn check_utf8(m: &mut Fragmented, fin: bool) -> Result<(), DecodeError> {
    if m.text {
        // Fail fast: every complete character so far must be valid; an incomplete one at
        // the end may still be completed by the next fragment, unless this is the last.
        match std::str::from_utf8(&m.data[m.checked..]) {
            Ok(_) => m.checked = m.data.len(),
            Err(e) if e.error_len().is_none() && !fin => m.checked += e.valid_up_to(),
            Err(_) => return Err(DecodeError::BadUtf8),
        }
    }
    Ok(())
}

fn on_close(payload: &[u8], on: &mut dyn FnMut(Event<'_>) -> Flow) -> Result<Flow, DecodeError> {
    match payload.len() {
        0 => Ok(on(Event::Close(None))),
        1 => Err(DecodeError::Protocol("close frame with a 1-byte body")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !frame::valid_close_code(code) {
                return Err(DecodeError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| DecodeError::BadUtf8)?;
            Ok(on(Event::Close(Some((code, reason)))))
        }
    }
}

#[cfg(test)]
mod tests;
