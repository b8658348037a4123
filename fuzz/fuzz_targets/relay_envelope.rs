//! The relay's envelope (`ringhub::protocol::envelope`): any bytes from a Redis topic. A
//! decoded envelope encodes back to the same bytes, and the payloads a receiving instance
//! reads (a revocation rule, a presence answer) are read without harm.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringhub::protocol::envelope::{self, Kind};

fuzz_target!(|data: &[u8]| {
    let Some(e) = envelope::decode(data) else {
        return;
    };
    let again = envelope::encode(e.kind, e.origin, e.cause, e.target, e.payload);
    assert_eq!(&again[..], data, "decode then encode changed the bytes");
    match e.kind {
        Kind::Revoke => {
            let _ = serde_json::from_slice::<ringhub::revocation::Rule>(e.payload);
        }
        Kind::Message => {
            let _ = envelope::message_offset(e.payload);
        }
        _ => {}
    }
});
