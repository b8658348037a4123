//! RFC 6455 frame heads: parsing client frames (which must be masked) and writing server
//! frames (never masked). The parser borrows the read buffer and allocates nothing.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(b: u8) -> Option<Opcode> {
        Some(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A parsed frame head; the payload follows at `header_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub fin: bool,
    /// RSV1: with permessage-deflate, the message is compressed (first frame only).
    pub rsv1: bool,
    pub opcode: Opcode,
    pub mask: [u8; 4],
    pub header_len: usize,
    pub payload_len: usize,
}

impl Head {
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Why a head could not be parsed. Everything but `Incomplete` ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// More bytes are needed.
    Incomplete,
    /// RSV2 or RSV3 set, RSV1 on a control frame, or an unknown opcode (1002). RSV1 on a
    /// data frame is the decoder's to judge (it knows whether compression was negotiated).
    Reserved,
    /// A client frame without a mask (1002).
    Unmasked,
    /// A control frame longer than 125 bytes or fragmented (1002).
    BadControl,
    /// Larger than `max_message_size` (1009).
    TooLarge,
}

/// Parses the head at the start of `buf`. `max` bounds the payload length.
pub fn parse_head(buf: &[u8], max: usize) -> Result<Head, FrameError> {
    if buf.len() < 2 {
        return Err(FrameError::Incomplete);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x30 != 0 {
        return Err(FrameError::Reserved);
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(FrameError::Reserved)?;
    let rsv1 = b0 & 0x40 != 0;
    if rsv1 && opcode.is_control() {
        return Err(FrameError::Reserved);
    }
    let fin = b0 & 0x80 != 0;
    if b1 & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Err(FrameError::Incomplete);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Err(FrameError::Incomplete);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (n as u64, 2),
    };
    if opcode.is_control() && (len > 125 || !fin) {
        return Err(FrameError::BadControl);
    }
    if len > max as u64 {
        return Err(FrameError::TooLarge);
    }
    if buf.len() < at + 4 {
        return Err(FrameError::Incomplete);
    }
    let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    at += 4;
    Ok(Head {
        fin,
        rsv1,
        opcode,
        mask,
        header_len: at,
        payload_len: len as usize,
    })
}

/// XORs `data` with the mask, continuing at mask position `offset`.
pub fn unmask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let word = u32::from_ne_bytes([
        mask[offset % 4],
        mask[(offset + 1) % 4],
        mask[(offset + 2) % 4],
        mask[(offset + 3) % 4],
    ]);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    let m = word.to_ne_bytes();
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i];
    }
}

/// Bytes a server frame head takes for a payload of `len`.
pub fn head_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// Writes a final, unmasked frame head into `out` (which must be `head_len(len)` long);
/// `rsv1` marks a compressed message.
fn write_head(out: &mut [u8], opcode: Opcode, rsv1: bool, len: usize) {
    out[0] = 0x80 | if rsv1 { 0x40 } else { 0 } | opcode.bits();
    match out.len() {
        2 => out[1] = len as u8,
        4 => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// The largest head; `FrameBuf` reserves this much in front of the payload.
pub const MAX_HEAD: usize = 10;

/// Builds one server frame in a single allocation: the payload is written after room for
/// the largest head, and the head is placed right before it when finished, so a frame's
/// bytes are made once and shared as `Bytes` by every recipient.
pub struct FrameBuf {
    buf: BytesMut,
}

impl FrameBuf {
    pub fn with_capacity(payload: usize) -> FrameBuf {
        let mut buf = BytesMut::with_capacity(MAX_HEAD + payload);
        buf.resize(MAX_HEAD, 0);
        FrameBuf { buf }
    }

    pub fn payload_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn finish(self, opcode: Opcode) -> Bytes {
        self.finish_with(opcode, false)
    }

    /// Finishes a frame whose payload is compressed (RSV1 set, RFC 7692).
    pub fn finish_compressed(self, opcode: Opcode) -> Bytes {
        self.finish_with(opcode, true)
    }

    fn finish_with(mut self, opcode: Opcode, rsv1: bool) -> Bytes {
        let len = self.buf.len() - MAX_HEAD;
        let h = head_len(len);
        write_head(&mut self.buf[MAX_HEAD - h..MAX_HEAD], opcode, rsv1, len);
        let mut frame = self.buf.freeze();
        frame.advance(MAX_HEAD - h);
        frame
    }
}

/// A whole server frame with `payload`.
pub fn encode(opcode: Opcode, payload: &[u8]) -> Bytes {
    let mut f = FrameBuf::with_capacity(payload.len());
    f.extend(payload);
    f.finish(opcode)
}

/// The opcode of a frame this hub encoded, and whether it is compressed already (RSV1).
pub fn opcode_of(frame: &[u8]) -> Option<(Opcode, bool)> {
    let b0 = *frame.first()?;
    Some((Opcode::from_bits(b0 & 0x0F)?, b0 & 0x40 != 0))
}

/// The payload length of a frame this hub encoded.
pub fn payload_len(frame: &[u8]) -> usize {
    let head = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    frame.len().saturating_sub(head)
}

/// The payload of a frame this hub encoded (unmasked, one frame): the frame without its head.
pub fn payload_of(frame: &Bytes) -> Bytes {
    let head = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    frame.slice(head.min(frame.len())..)
}

/// A close frame with a code and a short reason.
pub fn close(code: u16, reason: &str) -> Bytes {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let mut f = FrameBuf::with_capacity(2 + reason.len());
    f.extend(&code.to_be_bytes());
    f.extend(reason);
    f.finish(Opcode::Close)
}

/// A frame as a client writes it, with the raw `opcode` bits: masked with `mask`, or
/// unmasked with `None` (which the hub refuses). The hub never sends one; the tests and
/// `ringhub-bench` do.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let mut v = Vec::with_capacity(payload.len() + 14);
    v.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        n @ 0..=125 => v.push(masked | n as u8),
        n @ 126..=65535 => {
            v.push(masked | 126);
            v.extend((n as u16).to_be_bytes());
        }
        n => {
            v.push(masked | 127);
            v.extend((n as u64).to_be_bytes());
        }
    }
    let body = v.len();
    v.extend_from_slice(payload);
    if let Some(mask) = mask {
        v.splice(body..body, mask);
        unmask(&mut v[body + 4..], mask, 0);
    }
    v
}

/// Is this a close code a peer may send (RFC 6455 §7.4)?
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_masked_frames_of_every_length_class() {
        for len in [0usize, 5, 125, 126, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut f = client_frame(true, 0x2, &payload, Some([1, 2, 3, 4]));
            let head = parse_head(&f, 1 << 20).unwrap();
            assert_eq!(head.payload_len, len);
            assert_eq!(head.frame_len(), f.len());
            for cut in [0, 1, head.header_len - 1] {
                assert_eq!(parse_head(&f[..cut], 1 << 20), Err(FrameError::Incomplete));
            }
            let body = &mut f[head.header_len..];
            unmask(body, head.mask, 0);
            assert_eq!(body, &payload[..]);
        }
    }

    #[test]
    fn unmask_in_pieces_matches_unmask_whole() {
        let data: Vec<u8> = (0..37).collect();
        let mask = [9, 8, 7, 6];
        let mut whole = data.clone();
        unmask(&mut whole, mask, 0);
        let mut parts = data.clone();
        unmask(&mut parts[..5], mask, 0);
        unmask(&mut parts[5..], mask, 5);
        assert_eq!(whole, parts);
    }

    #[test]
    fn refuses_bad_heads() {
        assert_eq!(
            parse_head(&[0x81, 0x85, 0, 0, 0, 0], 100)
                .unwrap()
                .payload_len,
            5
        );
        assert_eq!(parse_head(&[0x81, 0x05], 100), Err(FrameError::Unmasked));
        assert_eq!(parse_head(&[0xA1, 0x85], 100), Err(FrameError::Reserved));
        assert_eq!(parse_head(&[0x91, 0x85], 100), Err(FrameError::Reserved));
        assert_eq!(parse_head(&[0xC9, 0x80], 100), Err(FrameError::Reserved));
        let compressed = parse_head(&[0xC1, 0x85, 0, 0, 0, 0], 100).unwrap();
        assert!(compressed.rsv1);
        assert_eq!(parse_head(&[0x83, 0x85], 100), Err(FrameError::Reserved));
        assert_eq!(parse_head(&[0x09, 0x80], 100), Err(FrameError::BadControl));
        assert_eq!(
            parse_head(&[0x89, 0xFE, 0, 126], 1000),
            Err(FrameError::BadControl)
        );
        assert_eq!(
            parse_head(&[0x82, 0xFE, 0x01, 0x00], 100),
            Err(FrameError::TooLarge)
        );
    }

    #[test]
    fn server_frames_have_minimal_heads() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let f = encode(Opcode::Text, &vec![b'x'; len]);
            assert_eq!(f.len(), head_len(len) + len);
            assert_eq!(f[0], 0x81);
        }
        let c = close(4009, "slow consumer");
        assert_eq!(&c[..4], &[0x88, 15, 0x0F, 0xA9]);
    }
}
