use super::*;

const LIMITS: Limits = Limits {
    max_message: 999,
    max_fragments: 8,
};

fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    frame::client_frame(fin, op, payload, Some([0x11, 0x22, 0x33, 0x44]))
}

#[derive(Debug, PartialEq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<(u16, String)>),
}

fn decode_in_pieces(bytes: &[u8], piece: usize) -> (Vec<Owned>, Result<(), DecodeError>) {
    decode_with(Decoder::default(), bytes, piece)
}

fn decode_with(
    mut d: Decoder,
    bytes: &[u8],
    piece: usize,
) -> (Vec<Owned>, Result<(), DecodeError>) {
    let mut out = Vec::new();
    for chunk in bytes.chunks(piece) {
        let mut chunk = chunk.to_vec();
        let r = d.feed(&mut chunk, LIMITS, &mut |e| {
            out.push(match e {
                Event::Text(t) => Owned::Text(t.into()),
                Event::Binary(b) => Owned::Binary(b.into()),
                Event::Ping(p) => Owned::Ping(p.into()),
                Event::Pong => Owned::Pong,
                Event::Close(c) => Owned::Close(c.map(|(code, r)| (code, r.into()))),
            });
            Flow::Continue
        });
        if let Err(e) = r {
            return (out, Err(e));
        }
    }
    (out, Ok(()))
}

#[test]
fn fragments_with_interleaved_control_frames_at_any_split() {
    let mut bytes = frame(false, 0x1, b"hel");
    bytes.extend(frame(true, 0x9, b"p"));
    bytes.extend(frame(false, 0x0, b"lo "));
    bytes.extend(frame(true, 0xA, b""));
    bytes.extend(frame(true, 0x0, "wörld".as_bytes()));
    bytes.extend(frame(true, 0x2, &[1, 2, 3]));
    let want = vec![
        Owned::Ping(b"p".to_vec()),
        Owned::Pong,
        Owned::Text("hello wörld".into()),
        Owned::Binary(vec![1, 2, 3]),
    ];
    for piece in [1, 2, 3, 7, bytes.len()] {
        let (got, r) = decode_in_pieces(&bytes, piece);
        assert_eq!(r, Ok(()), "piece {piece}");
        assert_eq!(got, want, "piece {piece}");
    }
}

#[test]
fn utf8_split_across_fragments_is_fine_but_invalid_fails_fast() {
    let s = "€".as_bytes();
    let mut bytes = frame(false, 0x1, &s[..1]);
    bytes.extend(frame(true, 0x0, &s[1..]));
    assert_eq!(
        decode_in_pieces(&bytes, 100).0,
        vec![Owned::Text("€".into())]
    );

    // invalid in the first fragment: refused before the message ends
    let bytes = frame(false, 0x1, &[0xCE, 0xBA, 0xFF]);
    assert_eq!(decode_in_pieces(&bytes, 100).1, Err(DecodeError::BadUtf8));
    // a truncated character in the last fragment
    let mut bytes = frame(false, 0x1, b"a");
    bytes.extend(frame(true, 0x0, &s[..2]));
    assert_eq!(decode_in_pieces(&bytes, 100).1, Err(DecodeError::BadUtf8));
    assert_eq!(
        decode_in_pieces(&frame(true, 0x1, &[0xC0]), 100).1,
        Err(DecodeError::BadUtf8)
    );
}

#[test]
fn protocol_errors() {
    let cont = frame(true, 0x0, b"x");
    assert!(matches!(
        decode_in_pieces(&cont, 100).1,
        Err(DecodeError::Protocol(_))
    ));
    let mut two_starts = frame(false, 0x1, b"a");
    two_starts.extend(frame(true, 0x1, b"b"));
    assert!(matches!(
        decode_in_pieces(&two_starts, 100).1,
        Err(DecodeError::Protocol(_))
    ));
    assert!(matches!(
        decode_in_pieces(&frame(true, 0x8, &[3]), 100).1,
        Err(DecodeError::Protocol(_))
    ));
    assert!(matches!(
        decode_in_pieces(&frame(true, 0x8, &[0x03, 0xED]), 100).1,
        Err(DecodeError::Protocol(_))
    ));
    assert_eq!(
        decode_in_pieces(&frame(true, 0x8, &[0x03, 0xE8, 0xFF]), 100).1,
        Err(DecodeError::BadUtf8)
    );
    let (got, _) = decode_in_pieces(&frame(true, 0x8, &[0x0F, 0xA1, b'b', b'y']), 100);
    assert_eq!(got, vec![Owned::Close(Some((4001, "by".into())))]);
}

#[test]
fn limits() {
    let mut many = Vec::new();
    for _ in 0..9 {
        many.extend(frame(false, if many.is_empty() { 0x2 } else { 0x0 }, b"x"));
    }
    assert_eq!(decode_in_pieces(&many, 100).1, Err(DecodeError::TooLarge));
    let mut big = Vec::new();
    for i in 0..8 {
        big.extend(frame(i == 7, if i == 0 { 0x2 } else { 0x0 }, &[0u8; 125]));
    }
    assert_eq!(decode_in_pieces(&big, 1000).1, Err(DecodeError::TooLarge));
}

#[test]
fn idle_decoder_holds_nothing() {
    let mut d = Decoder::default();
    let mut bytes = frame(true, 0x1, b"{}");
    let half = bytes.len() / 2;
    d.feed(&mut bytes[..half], LIMITS, &mut |_| Flow::Continue)
        .unwrap();
    assert!(d.held() > 0);
    d.feed(&mut bytes[half..], LIMITS, &mut |_| Flow::Continue)
        .unwrap();
    assert_eq!(d.held(), 0);
}

/// Raw DEFLATE of `data` as a client sends it: sync-flushed, the `00 00 ff ff` stripped.
fn deflated(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    out
}

fn with_deflate() -> Decoder {
    let mut d = Decoder::default();
    d.enable_deflate(true);
    d
}

#[test]
fn compressed_messages_whole_and_in_fragments() {
    let z = deflated("hello wörld hello wörld".as_bytes());
    let mut bytes = frame(true, 0x41, &z);
    let (a, b) = z.split_at(z.len() / 2);
    bytes.extend(frame(false, 0x41, a));
    bytes.extend(frame(true, 0x9, b"p"));
    bytes.extend(frame(true, 0x0, b));
    bytes.extend(frame(true, 0x1, b"plain"));
    let want = vec![
        Owned::Text("hello wörld hello wörld".into()),
        Owned::Ping(b"p".to_vec()),
        Owned::Text("hello wörld hello wörld".into()),
        Owned::Text("plain".into()),
    ];
    for piece in [1, 5, bytes.len()] {
        let (got, r) = decode_with(with_deflate(), &bytes, piece);
        assert_eq!(r, Ok(()), "piece {piece}");
        assert_eq!(got, want, "piece {piece}");
    }
    let mut d = with_deflate();
    let mut one = frame(true, 0x42, &deflated(&[7; 300]));
    d.feed(&mut one, LIMITS, &mut |_| Flow::Continue).unwrap();
    assert!(
        !d.holds_inflate_state(),
        "no context takeover: nothing kept"
    );
}

#[test]
fn rsv1_only_where_it_belongs() {
    let z = deflated(b"abc");
    // Not negotiated.
    assert!(matches!(
        decode_in_pieces(&frame(true, 0x41, &z), 100).1,
        Err(DecodeError::Protocol(_))
    ));
    // On a continuation frame.
    let mut bytes = frame(false, 0x1, b"a");
    bytes.extend(frame(true, 0x40, &z));
    assert!(matches!(
        decode_with(with_deflate(), &bytes, 100).1,
        Err(DecodeError::Protocol(_))
    ));
    // On a control frame.
    assert!(matches!(
        decode_with(with_deflate(), &frame(true, 0x49, b""), 100).1,
        Err(DecodeError::Protocol(_))
    ));
    // Not DEFLATE.
    assert!(matches!(
        decode_with(with_deflate(), &frame(true, 0x41, b"\xff\xfe\xfd"), 100).1,
        Err(DecodeError::Protocol(_))
    ));
    // Invalid UTF-8 once inflated.
    assert_eq!(
        decode_with(
            with_deflate(),
            &frame(true, 0x41, &deflated(&[0xC0, 0x80])),
            100
        )
        .1,
        Err(DecodeError::BadUtf8)
    );
}

#[test]
fn the_inflated_size_is_bounded() {
    // 100 bytes on the wire, 10 KB inflated: over the limit of 999 as it inflates.
    let bomb = deflated(&[b'a'; 10_000]);
    assert!(bomb.len() < 100);
    assert_eq!(
        decode_with(with_deflate(), &frame(true, 0x41, &bomb), 100).1,
        Err(DecodeError::TooLarge)
    );
    let (a, b) = bomb.split_at(bomb.len() / 2);
    let mut bytes = frame(false, 0x41, a);
    bytes.extend(frame(true, 0x0, b));
    assert_eq!(
        decode_with(with_deflate(), &bytes, 100).1,
        Err(DecodeError::TooLarge)
    );
}
