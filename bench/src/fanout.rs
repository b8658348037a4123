//! The `fanout` and `relay` scenarios: S subscribers over K channels, P publishers at R
//! messages/s each, every publication carrying its send time (`"t"`, µs since the epoch).
//!
//! Two latencies per delivery, both from that send time:
//! - **delivery**: until the frame reached the subscriber's socket, by the kernel's receive
//!   stamp (`SO_TIMESTAMPNS`). This is what a client with a CPU of its own sees; it leaves
//!   out the time the bench itself takes to get round to a socket when its threads share
//!   two cores with the hub under test.
//! - **read**: until the bench's reader had the frame in hand. It adds the bench's own
//!   queueing, and is reported beside the first for that reason.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use crate::client::{self, binary_frame, text_frame};
use crate::meter::Meter;
use crate::{now_us, open_many, percentiles, Cli};
use ringhub::protocol::proto::pb;

/// What a fan-out run offers.
pub struct Shape {
    pub subs: usize,
    pub channels: usize,
    pub pubs: usize,
    /// Per publisher; None is as fast as it goes.
    pub rate: Option<u64>,
    pub size: usize,
    pub seconds: u64,
    /// The hub's process id: also report what it spent (see [`Meter`]), with perf's
    /// counts when `perf` is set.
    pub pid: Option<u32>,
    pub perf: bool,
    /// Flood the server API meanwhile (`--api-flood`).
    pub flood: Option<crate::flood::Flood>,
    /// Subscribers on `ringhub.v1.proto`.
    pub proto: bool,
}

/// How long after the publishers stop the run waits for what is still on its way.
const DRAIN_WAIT: Duration = Duration::from_secs(3);

/// The run's two latency histograms (µs).
struct Latencies {
    delivery: Histogram<u64>,
    read: Histogram<u64>,
}

/// One subscriber's samples, handed to the run's histograms a batch at a time: a thousand
/// readers recording into histograms of their own would each keep a cold 140 KiB array,
/// and the bench would spend its time on cache misses.
struct Samples {
    batch: Vec<(u64, u64)>,
    into: Arc<Mutex<Latencies>>,
}

impl Samples {
    const BATCH: usize = 256;

    fn new(into: Arc<Mutex<Latencies>>) -> Samples {
        Samples {
            batch: Vec::with_capacity(Self::BATCH),
            into,
        }
    }

    fn record(&mut self, delivery_us: u64, read_us: u64) {
        self.batch.push((delivery_us.max(1), read_us.max(1)));
        if self.batch.len() == Self::BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let mut l = self.into.lock().unwrap();
        for &(d, r) in &self.batch {
            l.delivery.saturating_record(d);
            l.read.saturating_record(r);
        }
        self.batch.clear();
    }
}

pub async fn run_fanout(
    cli: &Cli,
    shape: Shape,
    prefix: &str,
    sub_addr: Option<SocketAddr>,
) -> serde_json::Value {
    let Shape {
        subs,
        channels,
        pubs,
        rate,
        size,
        seconds,
        pid,
        perf,
        flood,
        proto,
    } = shape;
    let prefix = prefix.to_string();
    let sub_at = sub_addr.unwrap_or(cli.addr);
    let subprotocol = proto.then_some(ringhub::protocol::wire::PROTO_SUBPROTOCOL);
    let opened = crate::open_with(sub_at, crate::mint_all(cli, subs, "s"), 256, subprotocol).await;
    let (mut sub_conns, failures) = (opened.conns, opened.failures);
    for (i, c) in sub_conns.iter_mut().enumerate() {
        let channel = format!("{prefix}-{}", i % channels);
        let f = if proto {
            binary_frame(&subscribe_proto(&channel))
        } else {
            text_frame(format!(r#"{{"id":1,"type":"subscribe","channel":"{channel}"}}"#).as_bytes())
        };
        c.send(&f).await;
        let (_, p) = c.next_frame().await.expect("subscribed");
        let subscribed = if proto {
            use prost::Message as _;
            let f = pb::HubFrame::decode(&p[..]).ok();
            matches!(
                f,
                Some(pb::HubFrame {
                    id: Some(1),
                    frame: Some(pb::hub_frame::Frame::Subscribed(_))
                })
            )
        } else {
            p.starts_with(br#"{"id":1,"type":"subscribed""#)
        };
        assert!(subscribed, "{}", String::from_utf8_lossy(&p));
        c.stamp_arrivals().expect("SO_TIMESTAMPNS");
    }
    if sub_addr.is_some() {
        // The subscribers' instance subscribes to Redis asynchronously: let it settle.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let per_channel: Vec<u64> = (0..channels)
        .map(|ch| (0..subs).filter(|i| i % channels == ch).count() as u64)
        .collect();
    let latencies = Arc::new(Mutex::new(Latencies {
        delivery: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
        read: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
    }));
    let received = Arc::new(AtomicU64::new(0));
    // Bytes of the publications' frames the subscribers read, heads included.
    let wire_bytes = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    let sub_fds: Vec<_> = sub_conns.iter().map(|c| c.stream.as_raw_fd()).collect();
    let mut readers = Vec::new();
    for mut c in sub_conns {
        let (received, closed, stopping) = (received.clone(), closed.clone(), stopping.clone());
        let wire_bytes = wire_bytes.clone();
        let mut samples = Samples::new(latencies.clone());
        readers.push(tokio::spawn(async move {
            let (mut last, mut arrived) = (0, None);
            loop {
                // Every frame of one read arrived with the newest of its segments.
                let (now, mut got, mut close, mut bytes) = (now_us(), 0, false, 0);
                let at = arrived.unwrap_or(now).min(now);
                let open = c
                    .drain_frames(|op, p| match op {
                        // A proto `message` carries the publisher's JSON `data` as it is,
                        // so `"t":` is found in either encoding.
                        1 | 2 => {
                            if let Some(t) = client::field_u64(p, br#""t":"#) {
                                samples.record(at.saturating_sub(t), now.saturating_sub(t));
                                got += 1;
                                bytes += (ringhub::ws::frame::head_len(p.len()) + p.len()) as u64;
                            }
                        }
                        8 => close = true,
                        _ => {}
                    })
                    .await;
                received.fetch_add(got, Ordering::Relaxed);
                wire_bytes.fetch_add(bytes, Ordering::Relaxed);
                if got > 0 {
                    last = now;
                }
                let (n, stamp) = if close || !open {
                    (0, None)
                } else {
                    c.fill_stamped().await
                };
                if n == 0 {
                    if !stopping.load(Ordering::Relaxed) {
                        closed.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                arrived = stamp;
            }
            samples.flush();
            // The socket stays open until the run has shut every reader down.
            (last, c)
        }));
    }
    let pub_conns = open_many(cli, cli.addr, pubs, 64, "p").await.conns;
    let published: Vec<Arc<AtomicU64>> =
        (0..channels).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let flooding = flood.map(crate::flood::start);
    let meter = pid.map(|pid| (Meter::start(pid, perf), Instant::now()));
    let started = Instant::now();
    let started_us = now_us();
    let deadline = started + Duration::from_secs(seconds);
    let mut writers = Vec::new();
    for (p, mut c) in pub_conns.into_iter().enumerate() {
        let published = published.clone();
        let prefix = prefix.clone();
        writers.push(tokio::spawn(async move {
            let pad = "x".repeat(size.saturating_sub(40));
            let mut payload = Vec::with_capacity(size + 100);
            let mut n: u64 = 0;
            let interval = rate.map(|r| Duration::from_secs_f64(1.0 / r as f64));
            // Independent publishers are not in step: publisher p starts p/P of an
            // interval late, so P publishers at R/s offer a publication every 1/(P*R) s
            // rather than P at once every 1/R s.
            let mut next = Instant::now() + interval.unwrap_or_default() * p as u32 / pubs as u32;
            tokio::time::sleep_until(next.into()).await;
            while Instant::now() < deadline {
                let ch = (p + n as usize) % published.len();
                payload.clear();
                use std::io::Write;
                let _ = write!(payload, r#"{{"type":"publish","channel":"{prefix}-{ch}","data":{{"t":{},"n":{n},"p":"{pad}"}}}}"#, now_us());
                if !c.send(&text_frame(&payload)).await {
                    break;
                }
                published[ch].fetch_add(1, Ordering::Relaxed);
                n += 1;
                if let Some(iv) = interval {
                    next += iv;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            c
        }));
    }
    let mut keep = Vec::new();
    for w in writers {
        keep.push(w.await.unwrap());
    }
    let api_flood = match flooding {
        Some(f) => Some(f.stop().await),
        None => None,
    };
    let send_secs = started.elapsed().as_secs_f64();
    let expected: u64 = published
        .iter()
        .zip(&per_channel)
        .map(|(p, s)| p.load(Ordering::Relaxed) * s)
        .sum();
    // What is still on its way gets DRAIN_WAIT; then every reader is told to stop by a
    // shutdown of its socket's read side, which ends its read at once.
    let waited = Instant::now();
    while received.load(Ordering::Relaxed) < expected && waited.elapsed() < DRAIN_WAIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // What the hub spent: up to here, before the readers are shut down.
    let got = received.load(Ordering::Relaxed);
    let hub = meter.map(|(m, t)| m.finish(t.elapsed().as_secs_f64(), got, "delivery"));
    stopping.store(true, Ordering::Relaxed);
    for fd in sub_fds {
        // Each socket is still open: its reader hands it back only when joined, below.
        ringhub::sys::shutdown(fd, std::net::Shutdown::Read);
    }
    let mut last = started_us;
    for r in readers {
        let (l, _conn) = r.await.unwrap();
        last = last.max(l);
    }
    drop(keep);
    let got = received.load(Ordering::Relaxed);
    let offered = expected as f64 / send_secs;
    // Over the time it took to deliver them: what queued during the run and arrived after
    // the publishers stopped counts, and so does the time it took to arrive.
    let deliver_secs = ((last - started_us) as f64 / 1e6).max(send_secs);
    let achieved = got as f64 / deliver_secs;
    let l = latencies.lock().unwrap();
    let (p, pr) = (
        percentiles(&l.delivery, 1000.0),
        percentiles(&l.read, 1000.0),
    );
    let encoding = if proto { "proto" } else { "json" };
    let bytes_per_delivery = wire_bytes.load(Ordering::Relaxed) as f64 / got.max(1) as f64;
    eprintln!("fanout: {subs} subscribers ({encoding}) over {channels} channels, {pubs} publishers, rate {rate:?}/s each, {size} B");
    eprintln!("  bytes on the wire per delivery {bytes_per_delivery:.1}");
    eprintln!(
        "  deliveries/s offered {offered:.0}, achieved {achieved:.0}; lost {}; closed {}",
        expected.saturating_sub(got),
        closed.load(Ordering::Relaxed)
    );
    for (name, p) in [("delivery", &p), ("read", &pr)] {
        eprintln!(
            "  {name} ms: p50 {} p90 {} p99 {} p99.9 {} max {}",
            p["p50"], p["p90"], p["p99"], p["p999"], p["max"]
        );
    }
    if let Some(h) = &hub {
        eprintln!(
            "  hub CPU {:.0}% user + {:.0}% system; per delivery {:.3} + {:.3} us; {} system calls and {} sends per delivery",
            h["user_percent"], h["system_percent"], h["user_us_per_delivery"], h["system_us_per_delivery"],
            h["syscalls_per_delivery"], h["sends_per_delivery"]
        );
    }
    let scenario = if sub_addr.is_some() {
        "relay"
    } else {
        "fanout"
    };
    json!({"scenario": scenario, "encoding": encoding, "bytes_per_delivery": bytes_per_delivery, "subs": subs, "channels": channels, "pubs": pubs, "rate": rate, "size": size,
           "seconds": send_secs, "deliver_seconds": deliver_secs, "failures": failures, "deliveries_expected": expected, "deliveries": got,
           "lost": expected.saturating_sub(got), "closed": closed.load(Ordering::Relaxed),
           "offered_per_s": offered, "achieved_per_s": achieved, "latency_ms": p, "read_latency_ms": pr, "hub_cost": hub,
           "api_flood": api_flood})
}

/// `ClientFrame { id: 1, subscribe { channel } }`, encoded.
fn subscribe_proto(channel: &str) -> Vec<u8> {
    use prost::Message as _;
    pb::ClientFrame {
        id: Some(1),
        correlation_id: String::new(),
        traceparent: String::new(),
        request: Some(pb::client_frame::Request::Subscribe(pb::Subscribe {
            channel: channel.into(),
            since: None,
            delta: String::new(),
        })),
    }
    .encode_to_vec()
}
