//! What the delta tests share (docs/protocol.md, "Deltas"): namespaces that allow deltas,
//! a table state that changes a little each round, and subscribers' appliers in both
//! encodings, rebuilding each publication's text from the whole one and the deltas after.

use ringhub::config::Namespace;
use ringhub::protocol::fossil;
use ringhub::protocol::proto::pb;
use serde_json::{json, Value};

/// `game` (deltas allowed) and `plain` (not), public, client publishes; `gamelog` with
/// history too.
pub fn with_deltas(c: &mut ringhub::Config) {
    let ns = |deltas, history_size| Namespace {
        public: true,
        client_publish: true,
        deltas,
        history_size,
        ..Namespace::default()
    };
    c.namespaces.insert("game".into(), ns(true, 0));
    c.namespaces.insert("plain".into(), ns(false, 0));
    c.namespaces.insert("gamelog".into(), ns(true, 100));
}

/// The test configuration for `driver` with [`with_deltas`]' namespaces.
pub fn config_with_deltas(driver: ringhub::config::Driver) -> ringhub::Config {
    let mut c = super::config(driver);
    with_deltas(&mut c);
    c
}

/// A ~1 KB table state that changes a little each round.
pub fn table(round: u64) -> Value {
    let seats: Vec<Value> = (0..9)
        .map(|s| json!({"seat": s, "user": format!("player-{s}"), "chips": 1000 + s * 7 + if s == round % 9 { round } else { 0 }, "cards": ["As", "Kd"], "folded": false}))
        .collect();
    json!({"table": 42, "round": round, "pot": round * 10, "seats": seats})
}

/// What a delta subscriber keeps: the last `data` text, to which the next delta applies.
#[derive(Default)]
pub struct Applier {
    pub base: Option<Vec<u8>>,
    pub deltas: usize,
}

impl Applier {
    /// The publication's text, from `data` whole (`delta` false) or as a delta.
    pub fn apply(&mut self, data: &[u8], delta: bool) -> Vec<u8> {
        let full = if delta {
            self.deltas += 1;
            let base = self
                .base
                .as_deref()
                .expect("a delta comes after a whole publication");
            fossil::apply(base, data).expect("the delta applies")
        } else {
            data.to_vec()
        };
        self.base = Some(full.clone());
        full
    }

    /// A JSON `message` of a delta subscription: its `data` as JSON.
    pub fn take(&mut self, m: &Value) -> Value {
        assert_eq!(m["type"], "message", "{m}");
        let text = m["data"].as_str().expect("data as a string");
        let delta = m["delta"]
            .as_bool()
            .unwrap_or_else(|| panic!("no delta: {m}"));
        serde_json::from_slice(&self.apply(text.as_bytes(), delta)).unwrap()
    }

    /// A protobuf `Message` of a delta subscription: the publication's text.
    pub fn take_proto(&mut self, m: &pb::Message) -> Vec<u8> {
        let delta = m.delta.unwrap_or_else(|| panic!("no delta: {m:?}"));
        self.apply(&m.data, delta)
    }
}
