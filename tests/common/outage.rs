//! The Redis outage trial of issue 24: on every instance a publisher sending numbered
//! publications (with ids, at a steady rate) and a subscriber that stays connected, while
//! Redis is killed and started again. Afterwards every acked publication is looked for at
//! every subscriber, by publisher and number (offsets restart when Redis comes back
//! empty), and the order of the offsets is checked.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::Message;

use super::connect;
use super::history::subscribe_since;

/// One publication: when it was sent and answered, and its offset when it was acked (the
/// error code otherwise).
pub struct Sent {
    pub n: u64,
    pub sent: Instant,
    pub answered: Instant,
    pub offset: Option<u64>,
    pub code: Option<String>,
}

/// Publisher `p`: publishes `{"p":p,"n":n}` on `channel` every `every`, each with id `n`,
/// and waits for the answer before the next.
pub struct Publisher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sent>>,
}

impl Publisher {
    pub fn start(addr: SocketAddr, channel: &str, p: u64, every: Duration) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let channel = channel.to_string();
        let thread = std::thread::spawn(move || {
            let (mut c, _) = connect(addr, &format!("publisher-{p}"));
            let mut out = Vec::new();
            let mut next = Instant::now();
            let mut n = 0;
            while !stop2.load(Ordering::Relaxed) {
                n += 1;
                let sent = Instant::now();
                let publication =
                    json!({"type": "publish", "channel": channel, "data": {"p": p, "n": n}});
                let r = c.request(publication, n);
                out.push(Sent {
                    n,
                    sent,
                    answered: Instant::now(),
                    offset: (r["type"] == "ack").then(|| r["offset"].as_u64()).flatten(),
                    code: r["code"].as_str().map(str::to_string),
                });
                next += every;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            out
        });
        Publisher { stop, thread }
    }

    pub fn stop(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("publisher thread")
    }
}

/// A subscriber keeping every frame it receives, with its arrival time.
pub struct Subscriber {
    stop: Arc<AtomicBool>,
    frames: Arc<Mutex<Vec<(Instant, Value)>>>,
    thread: JoinHandle<Result<(), String>>,
}

impl Subscriber {
    /// Connects and subscribes (without `since`) before returning.
    pub fn start(addr: SocketAddr, channel: &str, name: &str) -> Subscriber {
        let (mut c, _) = connect(addr, name);
        subscribe_since(&mut c, channel, None);
        c.ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (stop2, frames2) = (stop.clone(), frames.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match c.ws.read() {
                    Ok(Message::Text(t)) => {
                        let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
                        frames2.lock().unwrap().push((Instant::now(), v));
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => return Err(format!("the subscriber's connection ended: {e}")),
                }
            }
            Ok(())
        });
        Subscriber {
            stop,
            frames,
            thread,
        }
    }

    pub fn snapshot(&self) -> Vec<(Instant, Value)> {
        self.frames.lock().unwrap().clone()
    }

    pub fn stop(self) -> Vec<(Instant, Value)> {
        self.stop.store(true, Ordering::Relaxed);
        let ended = self.thread.join().expect("subscriber thread");
        assert_eq!(ended, Ok(()), "subscribers stay connected");
        Arc::try_unwrap(self.frames).unwrap().into_inner().unwrap()
    }
}

/// What one subscriber saw of the channel.
pub struct Seen {
    /// `(publisher, n)` → offset, arrival, in arrival order.
    pub messages: Vec<((u64, u64), u64, Instant)>,
    /// It received `{"type":"unsubscribed","channel":..,"reason":"recovery_failed"}`.
    pub told: bool,
}

/// The channel's messages up to the `recovery_failed` notice (nothing of the channel is
/// expected after it), and whether it came.
pub fn seen(frames: &[(Instant, Value)], channel: &str) -> Seen {
    let mut messages = Vec::new();
    for (at, f) in frames {
        if f["channel"] != channel {
            continue;
        }
        if f["type"] == "unsubscribed" && f["reason"] == "recovery_failed" && f.get("id").is_none()
        {
            return Seen {
                messages,
                told: true,
            };
        }
        if f["type"] == "message" {
            let key = (
                f["data"]["p"].as_u64().expect("data.p"),
                f["data"]["n"].as_u64().expect("data.n"),
            );
            messages.push((key, f["offset"].as_u64().expect("message.offset"), *at));
        }
    }
    Seen {
        messages,
        told: false,
    }
}

/// `(publisher, n)` → offset of every acked publication.
pub fn acked(sent: &[Vec<Sent>]) -> HashMap<(u64, u64), u64> {
    let mut out = HashMap::new();
    for (p, list) in sent.iter().enumerate() {
        for s in list {
            if let Some(o) = s.offset {
                out.insert((p as u64, s.n), o);
            }
        }
    }
    out
}

/// True when `seen` has every acked publication or was told.
pub fn complete(seen: &Seen, acked: &HashMap<(u64, u64), u64>) -> bool {
    if seen.told {
        return true;
    }
    let got: HashSet<(u64, u64)> = seen.messages.iter().map(|m| m.0).collect();
    acked.keys().all(|k| got.contains(k))
}

/// The promise, checked for subscriber `name`: no publication twice, offsets strictly
/// increasing, and every acked publication delivered (with its acked offset when
/// `same_offsets`, i.e. Redis kept its data) unless the subscriber was told and
/// `may_be_told`. Returns a description of what is wrong, if anything.
pub fn violations(
    name: &str,
    seen: &Seen,
    acked: &HashMap<(u64, u64), u64>,
    same_offsets: bool,
    may_be_told: bool,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut keys = HashSet::new();
    let dups: Vec<_> = seen
        .messages
        .iter()
        .filter(|m| !keys.insert(m.0))
        .map(|m| m.0)
        .collect();
    if !dups.is_empty() {
        wrong.push(format!(
            "{name}: {} duplicates, first {:?}",
            dups.len(),
            &dups[..dups.len().min(5)]
        ));
    }
    let disorder: Vec<_> = seen
        .messages
        .windows(2)
        .filter(|w| w[1].1 <= w[0].1)
        .map(|w| (w[0].1, w[1].1))
        .collect();
    if !disorder.is_empty() {
        wrong.push(format!(
            "{name}: offsets out of order {} times, first (before, after) {:?}",
            disorder.len(),
            &disorder[..disorder.len().min(5)]
        ));
    }
    if same_offsets {
        let moved: Vec<_> = seen
            .messages
            .iter()
            .filter(|m| acked.get(&m.0).is_some_and(|o| *o != m.1))
            .map(|m| (m.0, m.1))
            .collect();
        if !moved.is_empty() {
            wrong.push(format!(
                "{name}: delivered with another offset than acked: {:?}",
                &moved[..moved.len().min(5)]
            ));
        }
    }
    if seen.told && !may_be_told {
        wrong.push(format!(
            "{name}: told recovery_failed although Redis kept the history"
        ));
    }
    if !seen.told || !may_be_told {
        let mut missing: Vec<u64> = acked
            .iter()
            .filter(|(k, _)| !keys.contains(k))
            .map(|(_, o)| *o)
            .collect();
        missing.sort_unstable();
        if !missing.is_empty() {
            wrong.push(format!(
                "{name}: {} acked publications never arrived and nothing said so, offsets {:?}..",
                missing.len(),
                &missing[..missing.len().min(10)]
            ));
        }
    }
    wrong
}

/// Milliseconds from `back` to the first instant of `times` at or after it.
pub fn ms_after(back: Instant, times: impl Iterator<Item = Instant>) -> Option<u128> {
    times
        .filter(|t| *t >= back)
        .min()
        .map(|t| (t - back).as_millis())
}
