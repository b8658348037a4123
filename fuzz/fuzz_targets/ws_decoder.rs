//! The WebSocket decoder (`ringhub::ws::decoder`), as a connection drives it: bytes arrive
//! in reads of any size, the callback may stop the decoder (a connection that is closing or
//! over its queue) and feed it again later.
//!
//! Input: byte 0 picks the limits and the read sizes; byte 1's low bit picks the mode.
//! - raw: the rest is the client's byte stream as is (the fuzzer must find masks);
//! - framed: the rest is a list of `[flags, len, payload...]`, each masked into a frame
//!   with `client_frame`, so fragmentation, interleaved control frames and UTF-8 across
//!   fragments are reached quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringhub::ws::decoder::{Decoder, Event, Flow, Limits};
use ringhub::ws::frame::client_frame;

fuzz_target!(|data: &[u8]| {
    let [knobs, mode, rest @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_message: 128 + (*knobs as usize & 0x0F) * 64,
        max_fragments: 1 + (*knobs as usize >> 4),
    };
    let mut stream = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        frames(rest)
    };
    // Reads of 1..=64 bytes, varying with the stream's own bytes.
    let step = 1 + (*mode as usize >> 2);
    let mut decoder = Decoder::default();
    let mut events = 0usize;
    let mut at = 0;
    while at < stream.len() {
        let end = (at + step + stream[at] as usize % step).min(stream.len());
        let mut on = |e: Event<'_>| {
            check(&e, limits);
            events += 1;
            // Stop now and then, as a closing connection does, to leave bytes pending.
            if events.is_multiple_of(7) {
                Flow::Stop
            } else {
                Flow::Continue
            }
        };
        if let Err(e) = decoder.feed(&mut stream[at..end], limits, &mut on) {
            assert!(matches!(e.close_code(), 1002 | 1007 | 1009));
            return;
        }
        // What a stop left behind is decoded by the next feed, as the connection does.
        while decoder.has_pending() {
            match decoder.feed(&mut [], limits, &mut on) {
                Ok(Flow::Stop) => continue,
                Ok(Flow::Continue) => break,
                Err(_) => return,
            }
        }
        at = end;
    }
});

fn check(e: &Event<'_>, limits: Limits) {
    match e {
        Event::Text(t) => assert!(t.len() <= limits.max_message),
        Event::Binary(b) => assert!(b.len() <= limits.max_message),
        Event::Ping(p) => assert!(p.len() <= 125),
        Event::Pong => {}
        Event::Close(Some((_, reason))) => assert!(reason.len() <= 123),
        Event::Close(None) => {}
    }
}

/// `[flags, len, payload...]*`: flags bit 7 is FIN, the low 4 bits the opcode; `len` the
/// payload length (cut to what is left).
fn frames(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let [flags, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (payload, next) = tail.split_at(n);
        let mask = [flags ^ 0x5A, *len, 0x3C, 0xA5];
        out.extend(client_frame(
            flags & 0x80 != 0,
            flags & 0x0F,
            payload,
            Some(mask),
        ));
        rest = next;
    }
    out
}
