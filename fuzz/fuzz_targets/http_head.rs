//! The HTTP upgrade head (`ringhub::ws::http`): parsing any bytes, then what the public
//! port does with a parsed head: the token, the WebSocket checks and the 101 answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringhub::ws::http::{self, HeadError, MAX_HEAD};

fuzz_target!(|data: &[u8]| {
    match http::parse(data) {
        Ok((req, len)) => {
            assert!(len <= data.len() && len <= MAX_HEAD);
            let _ = req.token();
            if let Ok(key) = req.check_websocket() {
                let answer = http::switching_protocols(key, None, None);
                assert!(answer.starts_with(b"HTTP/1.1 101 "));
            }
            // Every prefix of a complete head is incomplete or already complete, never
            // an error: a head split across reads must not be refused.
            for cut in [len / 2, len.saturating_sub(1)] {
                match http::parse(&data[..cut]) {
                    Ok(_) | Err(HeadError::Incomplete) => {}
                    Err(e) => panic!("prefix of {cut} bytes of a valid head: {e:?}"),
                }
            }
        }
        Err(HeadError::Incomplete) => assert!(data.len() < MAX_HEAD),
        Err(HeadError::TooLarge | HeadError::Malformed) => {}
    }
});
