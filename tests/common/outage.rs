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
    /// Connects and subscribes (without `since`) before returning. When the hub ends the
    /// subscription with `recovery_failed`, it subscribes again with `since` (its last
    /// offset and epoch), as a client should, with id [`RESUBSCRIBE`].
    pub fn start(addr: SocketAddr, channel: &str, name: &str) -> Subscriber {
        let (mut c, _) = connect(addr, name);
        let r = subscribe_since(&mut c, channel, None);
        let mut epoch = r["epoch"].as_str().unwrap_or_default().to_string();
        let mut last = r["offset"].as_u64().unwrap_or(0);
        c.ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (stop2, frames2) = (stop.clone(), frames.clone());
        let channel = channel.to_string();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match c.ws.read() {
                    Ok(Message::Text(t)) => {
                        let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
                        if v["type"] == "message" && v["channel"] == channel.as_str() {
                            last = v["offset"].as_u64().unwrap_or(last);
                        } else if is_told(&v, &channel) {
                            let since = json!({"offset": last, "epoch": epoch});
                            c.send(json!({"type": "subscribe", "channel": channel, "since": since, "id": RESUBSCRIBE}));
                        } else if v["id"] == RESUBSCRIBE && v["type"] == "subscribed" {
                            epoch = v["epoch"].as_str().unwrap_or_default().to_string();
                            last = v["offset"].as_u64().unwrap_or(0);
                        }
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

/// The id of a subscriber's `subscribe` after it was told `recovery_failed`.
pub const RESUBSCRIBE: u64 = 7_000_001;

/// `{"type":"unsubscribed","channel":..,"reason":"recovery_failed"}`, without an id.
fn is_told(f: &Value, channel: &str) -> bool {
    f["type"] == "unsubscribed"
        && f["channel"] == channel
        && f["reason"] == "recovery_failed"
        && f.get("id").is_none()
}

/// `(publisher, n)`, offset, arrival.
pub type Delivery = ((u64, u64), u64, Instant);

/// What one subscriber saw of the channel.
pub struct Seen {
    /// Until it was told `recovery_failed` (or to the end), in arrival order.
    pub messages: Vec<Delivery>,
    /// It received `recovery_failed`.
    pub told: bool,
    /// Messages between that notice and the answer to its new `subscribe` (none should).
    pub stray: usize,
    /// The new subscription's starting offset, once answered, and what came after it
    /// (until a second notice, if any).
    pub again: Option<(u64, Vec<Delivery>)>,
    /// It was told `recovery_failed` a second time.
    pub told_again: bool,
}

impl Seen {
    /// Every delivery, before and after a new subscription.
    pub fn all(&self) -> impl Iterator<Item = &Delivery> {
        let after = self.again.iter().flat_map(|a| a.1.iter());
        self.messages.iter().chain(after)
    }
}

pub fn seen(frames: &[(Instant, Value)], channel: &str) -> Seen {
    let mut s = Seen {
        messages: Vec::new(),
        told: false,
        stray: 0,
        again: None,
        told_again: false,
    };
    for (at, f) in frames {
        if f["id"] == RESUBSCRIBE && f["type"] == "subscribed" {
            s.again = Some((f["offset"].as_u64().unwrap_or(0), Vec::new()));
            continue;
        }
        if f["channel"] != channel {
            continue;
        }
        if is_told(f, channel) {
            if s.again.is_some() {
                s.told_again = true;
                break;
            }
            s.told = true;
            continue;
        }
        if f["type"] != "message" {
            continue;
        }
        let key = (
            f["data"]["p"].as_u64().expect("data.p"),
            f["data"]["n"].as_u64().expect("data.n"),
        );
        let delivery = (key, f["offset"].as_u64().expect("message.offset"), *at);
        match (&mut s.again, s.told) {
            (Some((_, after)), _) => after.push(delivery),
            (None, true) => s.stray += 1,
            (None, false) => s.messages.push(delivery),
        }
    }
    s
}

/// `(publisher, n)` → offset of every publication acked at or after `from`.
pub fn acked(sent: &[Vec<Sent>], from: Instant) -> HashMap<(u64, u64), u64> {
    let mut out = HashMap::new();
    for (p, list) in sent.iter().enumerate() {
        for s in list.iter().filter(|s| s.answered >= from) {
            if let Some(o) = s.offset {
                out.insert((p as u64, s.n), o);
            }
        }
    }
    out
}

/// The publications of `acked` a subscription starting after offset `from` must receive.
fn due_after(acked: &HashMap<(u64, u64), u64>, from: u64) -> HashMap<(u64, u64), u64> {
    acked
        .iter()
        .filter(|(_, o)| **o > from)
        .map(|(k, o)| (*k, *o))
        .collect()
}

fn has_all(deliveries: &[Delivery], due: &HashMap<(u64, u64), u64>) -> bool {
    let got: HashSet<(u64, u64)> = deliveries.iter().map(|m| m.0).collect();
    due.keys().all(|k| got.contains(k))
}

/// True when `seen` has every publication in `acked`, or was told and its new subscription
/// has every one in `renewed` (acked once Redis was back) after its starting offset.
pub fn complete(
    seen: &Seen,
    acked: &HashMap<(u64, u64), u64>,
    renewed: &HashMap<(u64, u64), u64>,
) -> bool {
    if !seen.told {
        return has_all(&seen.messages, acked);
    }
    match &seen.again {
        None => false,
        Some(_) if seen.told_again => true,
        Some((from, after)) => has_all(after, &due_after(renewed, *from)),
    }
}

/// The promise, checked for subscriber `name`. Until a `recovery_failed` notice: no
/// publication twice, offsets strictly increasing, the offset of the ack when
/// `same_offsets` (Redis kept its data), and every publication of `acked` delivered unless
/// told. A notice is wrong unless `may_be_told`; after one, the new subscription must
/// receive, the same way, every publication of `renewed` after its starting offset.
pub fn violations(
    name: &str,
    seen: &Seen,
    acked: &HashMap<(u64, u64), u64>,
    renewed: &HashMap<(u64, u64), u64>,
    same_offsets: bool,
    may_be_told: bool,
) -> Vec<String> {
    let told = seen.told && may_be_told;
    let mut wrong = stream_violations(name, &seen.messages, acked, same_offsets, !told);
    if seen.told && !may_be_told {
        wrong.push(format!(
            "{name}: told recovery_failed although Redis kept the history"
        ));
    }
    if !told {
        return wrong;
    }
    if seen.stray > 0 {
        wrong.push(format!(
            "{name}: {} messages after recovery_failed, before subscribing again",
            seen.stray
        ));
    }
    match &seen.again {
        None => wrong.push(format!(
            "{name}: subscribing again after recovery_failed was not answered"
        )),
        Some((from, after)) => {
            let due = due_after(renewed, *from);
            let again = format!("{name}, subscribed again after offset {from}");
            wrong.extend(stream_violations(
                &again,
                after,
                &due,
                true,
                !seen.told_again,
            ));
        }
    }
    wrong
}

/// Duplicates, disorder, offsets other than acked, and (when `all`) what is missing of
/// `due` in `deliveries`.
fn stream_violations(
    name: &str,
    deliveries: &[Delivery],
    due: &HashMap<(u64, u64), u64>,
    same_offsets: bool,
    all: bool,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut keys = HashSet::new();
    let dups: Vec<_> = deliveries
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
    let disorder: Vec<_> = deliveries
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
        let moved: Vec<_> = deliveries
            .iter()
            .filter(|m| due.get(&m.0).is_some_and(|o| *o != m.1))
            .map(|m| (m.0, m.1))
            .collect();
        if !moved.is_empty() {
            wrong.push(format!(
                "{name}: delivered with another offset than acked: {:?}",
                &moved[..moved.len().min(5)]
            ));
        }
    }
    if all {
        let mut missing: Vec<u64> = due
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
