//! The `envelope` scenario: the relay's RH1 envelope (`ringhub::protocol::envelope`) timed
//! against the protobuf message that would replace it (the same fields plus a version),
//! encode and decode of one publication, in this process. It decided issue 19 part 3
//! (docs/relay.md): a quick timing, not a criterion bench.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use prost::Message as _;
use ringhub::protocol::envelope::{self, Kind};
use serde_json::json;

/// What a protobuf relay envelope would be.
#[derive(Clone, PartialEq, prost::Message)]
struct RelayEnvelope {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(uint32, tag = "2")]
    kind: u32,
    #[prost(string, tag = "3")]
    origin: String,
    #[prost(string, tag = "4")]
    cause: String,
    #[prost(string, tag = "5")]
    target: String,
    #[prost(bytes = "bytes", tag = "6")]
    payload: Bytes,
}

fn ns_per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

pub fn run_envelope(iterations: u32) -> serde_json::Value {
    let mut rows = Vec::new();
    for size in [60usize, 1024] {
        let data = format!(r#"{{"p":"{}"}}"#, "x".repeat(size.saturating_sub(8)));
        let payload = ringhub::ws::frame::payload_of(&ringhub::protocol::message(
            "table:42",
            &data,
            Some("player-1"),
        ));
        let (origin, cause, target) = ("inst-a1b2c3", "", "table:42");
        let rh1 = envelope::encode(Kind::Message, origin, cause, target, &payload);
        let pb = RelayEnvelope {
            version: 1,
            kind: 1,
            origin: origin.into(),
            cause: cause.into(),
            target: target.into(),
            payload: payload.clone(),
        }
        .encode_to_vec();
        let pb = Bytes::from(pb);
        let rh1_encode = ns_per_op(iterations, || {
            black_box(envelope::encode(
                Kind::Message,
                black_box(origin),
                cause,
                target,
                black_box(&payload),
            ));
        });
        let rh1_decode = ns_per_op(iterations, || {
            black_box(envelope::decode(black_box(&rh1)));
        });
        let pb_encode = ns_per_op(iterations, || {
            let m = RelayEnvelope {
                version: 1,
                kind: 1,
                origin: black_box(origin).into(),
                cause: cause.into(),
                target: target.into(),
                payload: black_box(&payload).clone(),
            };
            black_box(m.encode_to_vec());
        });
        let pb_decode = ns_per_op(iterations, || {
            black_box(RelayEnvelope::decode(black_box(pb.clone())).ok());
        });
        eprintln!(
            "envelope, {} B message: RH1 {} B, encode {rh1_encode:.0} ns, decode {rh1_decode:.0} ns; protobuf {} B, encode {pb_encode:.0} ns, decode {pb_decode:.0} ns",
            payload.len(),
            rh1.len(),
            pb.len()
        );
        rows.push(json!({"message_bytes": payload.len(), "rh1_bytes": rh1.len(), "rh1_encode_ns": rh1_encode,
            "rh1_decode_ns": rh1_decode, "proto_bytes": pb.len(), "proto_encode_ns": pb_encode, "proto_decode_ns": pb_decode}));
    }
    json!({"scenario": "envelope", "iterations": iterations, "rows": rows})
}
