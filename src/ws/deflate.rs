//! permessage-deflate's data (RFC 7692 §7.2): raw DEFLATE, each message ended by a sync
//! flush whose `00 00 ff ff` is stripped on the wire and appended again before inflating.
//!
//! The hub compresses every message without context takeover, with one reusable zlib
//! state per window size on each shard thread (making a state costs more than compressing
//! a 1 KB message with it: 256 KiB of window and hash tables). A client's messages are
//! inflated with its connection's state, kept between messages only when the client keeps
//! its own (context takeover), so a connection that agreed to `client_no_context_takeover`
//! holds no inflate state while idle.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::{self, FrameBuf, Opcode};

/// What a sync flush ends with; RFC 7692 §7.2.1 has the sender strip it.
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

thread_local! {
    /// (window bits, level, state), reset before each message.
    static COMPRESSORS: RefCell<Vec<(u8, u32, Compress)>> = const { RefCell::new(Vec::new()) };
}

/// `frame`, a whole data frame this hub encoded, with its payload compressed with a window
/// of `bits` (9 to 15) at `level`; None when that would not make it smaller (it then goes
/// out as it is, with RSV1 clear, which the extension allows for any message).
pub fn compress_frame(frame: &Bytes, level: u32, bits: u8) -> Option<Bytes> {
    let (opcode, compressed) = frame::opcode_of(frame)?;
    if compressed || !matches!(opcode, Opcode::Text | Opcode::Binary) {
        return None;
    }
    let payload = frame::payload_of(frame);
    // Room for the payload and the tail: output that does not fit saves nothing.
    let room = payload.len() + TAIL.len();
    let mut out = FrameBuf::with_capacity(room);
    let buf = out.payload_mut();
    let start = buf.len();
    buf.resize(start + room, 0);
    let written = COMPRESSORS.with(|c| {
        let mut all = c.borrow_mut();
        let at = match all.iter().position(|(b, l, _)| (*b, *l) == (bits, level)) {
            Some(at) => at,
            None => {
                let window = bits.clamp(9, 15);
                let state = Compress::new_with_window_bits(Compression::new(level), false, window);
                all.push((bits, level, state));
                all.len() - 1
            }
        };
        let state = &mut all[at].2;
        state.reset();
        let status = state.compress(&payload, &mut buf[start..], FlushCompress::Sync);
        let (read, written) = (state.total_in() as usize, state.total_out() as usize);
        // A full output buffer may hold back the rest: not smaller, not sent compressed.
        (matches!(status, Ok(Status::Ok)) && read == payload.len() && written < room)
            .then_some(written)
    })?;
    if written < TAIL.len() || buf[start + written - TAIL.len()..start + written] != TAIL {
        return None;
    }
    let len = written - TAIL.len();
    if len >= payload.len() {
        return None;
    }
    buf.truncate(start + len);
    Some(out.finish_compressed(opcode))
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates past the limit (1009).
    TooLarge,
    /// Not valid DEFLATE data.
    Corrupt,
}

/// The inflating side of one connection.
pub struct Inflater {
    /// The client keeps its window between messages, so this keeps the state.
    takeover: bool,
    state: Option<Decompress>,
}

impl Inflater {
    pub fn new(client_no_context: bool) -> Inflater {
        Inflater {
            takeover: !client_no_context,
            state: None,
        }
    }

    /// An inflate state is held now (between messages only with context takeover).
    pub fn holds_state(&self) -> bool {
        self.state.is_some()
    }

    /// Inflates one frame's payload of a compressed message, appending to `out`, which may
    /// not grow past `max` bytes: a message that inflates further is refused as it
    /// inflates, never held whole. `last` ends the message.
    pub fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), InflateError> {
        let state = self
            .state
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        let mut ended = inflate_into(state, input, out, max)?;
        if last && !ended {
            ended = inflate_into(state, &TAIL, out, max)?;
        }
        if last && !self.takeover {
            // Nothing of this message is needed for the next: free the state (and window).
            self.state = None;
        } else if ended {
            // A final block (BFINAL) ends the DEFLATE stream; the next message starts a new
            // one (its window is lost, which a client that sends BFINAL accepts).
            state.reset(false);
        }
        Ok(())
    }
}

/// Inflates `input` into `out` up to `max` bytes; true when the stream ended (BFINAL).
fn inflate_into(
    state: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<bool, InflateError> {
    loop {
        if out.len() == out.capacity() {
            if out.len() > max {
                return Err(InflateError::TooLarge);
            }
            // Grow geometrically, never past one byte over the limit (which tells it was
            // passed).
            let want = (out.len().max(input.len() * 4).max(1024)).min(max + 1 - out.len());
            out.reserve_exact(want);
        }
        let (read0, made0) = (state.total_in(), state.total_out());
        let status = state
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        let read = (state.total_in() - read0) as usize;
        let made = state.total_out() - made0;
        input = &input[read..];
        if out.len() > max {
            return Err(InflateError::TooLarge);
        }
        match status {
            Status::StreamEnd => return Ok(true),
            _ if input.is_empty() && out.len() < out.capacity() => return Ok(false),
            _ if read == 0 && made == 0 && out.len() < out.capacity() => {
                return Err(InflateError::Corrupt)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_state() -> Vec<u8> {
        let seats: Vec<String> = (0..8)
            .map(|i| {
                format!(
                    r#"{{"seat":{i},"player":"p-{i:04}","stack":{},"status":"active"}}"#,
                    10_000 - i * 113
                )
            })
            .collect();
        format!(r#"{{"table":"t-1","seats":[{}]}}"#, seats.join(",")).into_bytes()
    }

    fn compressed_payload(frame: &Bytes) -> Vec<u8> {
        frame::payload_of(frame).to_vec()
    }

    #[test]
    fn compresses_with_rsv1_and_inflates_back() {
        let data = table_state();
        let plain = frame::encode(Opcode::Text, &data);
        for bits in [9, 12, 15] {
            let c = compress_frame(&plain, 6, bits).expect("a table state compresses");
            assert_eq!(c[0], 0xC1, "FIN, RSV1, text");
            assert!(c.len() < plain.len() / 2);
            let mut out = Vec::new();
            let mut inflater = Inflater::new(true);
            inflater
                .inflate(&compressed_payload(&c), true, &mut out, 1 << 20)
                .unwrap();
            assert_eq!(out, data);
            assert!(!inflater.holds_state());
        }
    }

    #[test]
    fn incompressible_and_control_frames_stay_as_they_are() {
        let noise: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(compress_frame(&frame::encode(Opcode::Binary, &noise), 6, 15).is_none());
        assert!(compress_frame(&frame::encode(Opcode::Ping, b"aaaaaaaaaaaaaaaa"), 6, 15).is_none());
        assert!(compress_frame(&frame::encode(Opcode::Text, b""), 6, 15).is_none());
    }

    #[test]
    fn context_takeover_spans_messages_and_pieces() {
        // A client with context takeover: its second message refers to its first.
        let mut client = Compress::new(Compression::default(), false);
        let mut wire = Vec::new();
        for msg in [&b"hello hello hello hello"[..], b"hello hello hello hello"] {
            let mut out = Vec::with_capacity(128);
            client
                .compress_vec(msg, &mut out, FlushCompress::Sync)
                .unwrap();
            out.truncate(out.len() - 4);
            wire.push(out);
        }
        assert!(wire[1].len() < wire[0].len());
        let mut inflater = Inflater::new(false);
        for piece in &wire {
            let mut out = Vec::new();
            let (a, b) = piece.split_at(piece.len() / 2);
            inflater.inflate(a, false, &mut out, 100).unwrap();
            inflater.inflate(b, true, &mut out, 100).unwrap();
            assert_eq!(out, b"hello hello hello hello");
        }
        assert!(inflater.holds_state());
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let mut c = Compress::new(Compression::best(), false);
        let mut bomb = Vec::with_capacity(64 << 10);
        c.compress_vec(&zeros, &mut bomb, FlushCompress::Sync)
            .unwrap();
        assert!(bomb.len() < 20 << 10);
        let mut out = Vec::new();
        let r = Inflater::new(true).inflate(&bomb, true, &mut out, 65536);
        assert_eq!(r, Err(InflateError::TooLarge));
        assert!(out.capacity() <= 2 * 65536 + 1);
        let mut out = Vec::new();
        let r = Inflater::new(true).inflate(b"\xff\xff\xff\xff garbage", true, &mut out, 65536);
        assert_eq!(r, Err(InflateError::Corrupt));
    }
}
