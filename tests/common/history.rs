//! Helpers for the history tests: the namespaces they use, subscribing with `since`, a
//! publisher that hammers a channel, and a subscriber that drops and recovers again and
//! again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringhub::config::Namespace;
use serde_json::{json, Value};

use super::{connect, Client};

/// The history tests' public namespaces: `log` (100,000 kept), `short` (3 kept) and
/// `brief` (100 kept, for 300 ms).
pub fn with_history(c: &mut ringhub::Config) {
    let ns = |size, ttl| Namespace {
        public: true,
        client_publish: true,
        history_size: size,
        history_ttl: ttl,
        ..Namespace::default()
    };
    c.namespaces.insert("log".into(), ns(100_000, None));
    c.namespaces.insert("short".into(), ns(3, None));
    c.namespaces
        .insert("brief".into(), ns(100, Some(Duration::from_millis(300))));
}

/// Subscribes, with `since` when given, and returns the `subscribed` reply.
pub fn subscribe_since(c: &mut Client, channel: &str, since: Option<(u64, &str)>) -> Value {
    let mut req = json!({"type": "subscribe", "channel": channel});
    if let Some((offset, epoch)) = since {
        req["since"] = json!({"offset": offset, "epoch": epoch});
    }
    let r = c.request(req, 900);
    assert_eq!(r["type"], "subscribed", "{r}");
    r
}

/// A publisher on its own thread, publishing as fast as acks allow (it waits for every
/// 20th publication's offset, so it keeps pace with the sequencer).
pub struct Hammer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Hammer {
    pub fn start(addr: SocketAddr, channel: &str) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let channel = channel.to_string();
        let thread = std::thread::spawn(move || {
            let (mut p, _) = connect(addr, "hammer");
            let mut n = 0;
            while !stop2.load(Ordering::Relaxed) {
                n += 1;
                let publication = json!({"type": "publish", "channel": channel, "data": n});
                if n % 20 == 0 {
                    p.request(publication, n);
                } else {
                    p.send(publication);
                }
            }
            n
        });
        Hammer { stop, thread }
    }

    /// Stops and returns how many were published.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A subscriber that connects (round `i` to `addrs[i % len]`), subscribes with `since`,
/// reads for `read` and drops, `rounds` times. Every offset must arrive exactly once, in
/// order. Returns the last offset seen.
pub fn recover_repeatedly(
    addrs: &[SocketAddr],
    channel: &str,
    rounds: usize,
    read: Duration,
) -> u64 {
    let mut last = 0u64;
    let mut epoch = String::new();
    for round in 0..rounds {
        let (mut c, _) = connect(
            addrs[round % addrs.len()],
            &format!("recoverer-{}", round % 3),
        );
        let since = (round > 0).then_some((last, epoch.as_str()));
        let r = subscribe_since(&mut c, channel, since);
        epoch = r["epoch"].as_str().unwrap().to_string();
        if round == 0 {
            last = r["offset"].as_u64().unwrap();
        } else {
            assert_eq!(r["recovered"], true, "round {round}: {r}");
        }
        let until = Instant::now() + read;
        while Instant::now() < until {
            let m = c.recv();
            if m["type"] != "message" {
                continue;
            }
            let o = m["offset"].as_u64().unwrap();
            assert_eq!(o, last + 1, "round {round}: after {last} came {o}");
            last = o;
        }
    }
    last
}

/// The offsets of a `history` answer's publications, in order.
pub fn offsets(history: &Value) -> Vec<u64> {
    history["publications"]
        .as_array()
        .unwrap_or_else(|| panic!("not a history answer: {history}"))
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect()
}
