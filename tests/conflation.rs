//! Conflation on state channels (docs/protocol.md, "Conflation"): a subscriber that falls
//! behind on a `conflate` namespace is not closed with 4009; what it had queued of the
//! channel is replaced by the newest publication. It reads on and ends at the last state,
//! its offsets increasing with jumps, its deltas (whole again after a replacement) applying.

mod common;

use std::time::Duration;

use common::*;
use ringhub::config::{Driver, Namespace};
use ringhub::protocol::fossil;
use serde_json::{json, Value};

const N: u64 = 2000;

fn behind_on_a_state_channel_is_conflated_not_closed(driver: Driver) {
    let mut c = config(driver);
    c.send_queue_bytes = 256 * 1024;
    c.conflate_queue_bytes = 64 * 1024;
    c.namespaces.insert(
        "state".into(),
        Namespace {
            public: true,
            client_publish: true,
            conflate: true,
            deltas: true,
            history_size: 100,
            ..Namespace::default()
        },
    );
    let hub = start(c);
    let (mut slow, _) = connect(hub.addr, "slow");
    slow.request(json!({"type": "subscribe", "channel": "state:1"}), 1);
    let (mut slow_delta, _) = connect(hub.addr, "slow-delta");
    slow_delta.request(
        json!({"type": "subscribe", "channel": "state:1", "delta": "fossil"}),
        1,
    );
    let (mut fast, _) = connect(hub.addr, "fast");
    fast.subscribe("state:1");
    let (mut publisher, _) = connect(hub.addr, "publisher");
    // 16 MB in all, past what the kernel buffers of the clients that do not read hold;
    // the reading client keeps up, in steps of 32 KB (under the 64 KB past which it too
    // would be conflated), and gets every publication.
    const STEP: u64 = 4;
    for start in (1..=N).step_by(STEP as usize) {
        for n in start..start + STEP {
            let state = json!({"n": n, "blob": noise(n)});
            publisher.send(json!({"type": "publish", "channel": "state:1", "data": state}));
        }
        for n in start..start + STEP {
            assert_eq!(fast.recv()["offset"], n);
        }
    }
    let metrics = hub.api().without_key().get("/metrics").body;
    let conflated = common::admin::metric(&metrics, "ringhub_conflated_publications_total");
    assert!(conflated > 0.0, "publications were replaced: {conflated}");
    assert_eq!(
        common::admin::metric(&metrics, "ringhub_slow_consumer_closes_total"),
        0.0
    );

    let plain = read_to_the_end(&mut slow, |m| m["data"]["n"].as_u64().unwrap());
    let mut base: Option<String> = None;
    let delta = read_to_the_end(&mut slow_delta, |m| {
        let text = m["data"].as_str().unwrap();
        let full = if m["delta"] == true {
            let out = fossil::apply(base.as_deref().unwrap().as_bytes(), text.as_bytes());
            String::from_utf8(out.expect("every delta applies to what came before")).unwrap()
        } else {
            text.to_string()
        };
        base = Some(full.clone());
        serde_json::from_str::<Value>(&full).unwrap()["n"]
            .as_u64()
            .unwrap()
    });
    for (name, got) in [("plain", plain), ("delta", delta)] {
        assert!(
            got.len() < N as usize,
            "{name}: some were replaced ({})",
            got.len()
        );
    }
}

/// 8,000 characters that differ from one `n` to the next: deltas as large as the whole.
fn noise(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..8000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}

/// Reads until `N` arrives: offsets strictly increasing (jumps where publications were
/// replaced), each `n` its offset. Returns the offsets received.
fn read_to_the_end(c: &mut Client, mut n_of: impl FnMut(&Value) -> u64) -> Vec<u64> {
    let mut got: Vec<u64> = Vec::new();
    loop {
        let m = c.recv();
        assert_eq!(m["type"], "message", "{m}");
        let offset = m["offset"].as_u64().unwrap();
        assert_eq!(n_of(&m), offset);
        assert!(got.last().is_none_or(|&last| offset > last), "in order");
        got.push(offset);
        if offset == N {
            break;
        }
    }
    c.expect_silence(Duration::from_millis(50));
    got
}

both_drivers!(behind_on_a_state_channel_is_conflated_not_closed);
