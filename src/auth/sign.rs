//! Signatures on what the hub sends to backends (rpc calls; webhooks and proxies use the
//! same): `X-Ringhub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! The timestamp is inside the MAC, so a receiver can refuse old requests (replays) as
//! well as forged ones. docs/rpc.md shows how a backend checks it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header value for `body`, signed now.
pub fn header(secret: &[u8], body: &[u8]) -> String {
    header_at(secret, body, super::unix_ms() / 1000)
}

/// The header value for `body` signed at `t` (unix seconds).
pub fn header_at(secret: &[u8], body: &[u8], t: u64) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, body, t)))
}

fn mac(secret: &[u8], body: &[u8], t: u64) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// Checks a header against `body` (what a receiver does): the MAC, and that `t` is within
/// `tolerance_s` of `now_s`.
pub fn verify(secret: &[u8], body: &[u8], header: &str, now_s: u64, tolerance_s: u64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = <[u8; 32] as hex::FromHex>::from_hex(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if now_s.abs_diff(t) > tolerance_s {
        return false;
    }
    use subtle::ConstantTimeEq;
    mac(secret, body, t).ct_eq(&v1).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_vector() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        let h = header_at(b"s3cret", br#"{"a":1}"#, 1_700_000_000);
        assert_eq!(
            h,
            "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[test]
    fn verify_checks_the_mac_and_the_age() {
        let h = header_at(b"k", b"body", 1000);
        assert!(verify(b"k", b"body", &h, 1010, 300));
        assert!(!verify(b"k", b"other", &h, 1010, 300), "another body");
        assert!(!verify(b"j", b"body", &h, 1010, 300), "another secret");
        assert!(!verify(b"k", b"body", &h, 2000, 300), "too old");
        assert!(!verify(b"k", b"body", "t=1000", 1000, 300), "no MAC");
    }
}
