//! Counters and latency histograms, kept per shard without contention and merged when
//! scraped.
//!
//! Each shard writes only its own [`ShardStats`] (single writer: a relaxed load and store,
//! no locked instruction), reached through a thread-local set when the shard starts, so that
//! code deep in the write path can count without carrying a handle. Latency histograms
//! (hdrhistogram) sit behind one mutex per shard that only the scrape ever contends for.
//! The control plane's own counters (API requests) live in its registry; see `encode.rs`.

mod encode;
mod rpc;
mod webhooks;

use std::cell::OnceCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

pub use encode::{render, ApiLabels, KeyLabels, Registry};

/// Close codes counted one by one; anything else counts as `other`.
pub const CLOSE_CODES: [u16; 15] = [
    1000, 1001, 1002, 1005, 1006, 1007, 1008, 1009, 1011, 1013, 4001, 4003, 4004, 4009, 4029,
];

/// Why an authentication failed: the verifier's reasons, plus the hub's own.
pub const AUTH_REASONS: [&str; 12] = [
    "malformed",
    "expired",
    "not_yet_valid",
    "bad_signature",
    "no_key",
    "issuer_or_audience",
    "claims",
    "revoked",
    "timeout",
    "other_user",
    // The connect proxy or the token store refused the token, or could not answer.
    "refused",
    "unavailable",
];

/// Why an upgrade was refused before its token was looked at (token refusals are
/// `AUTH_REASONS`).
pub const UPGRADE_REFUSALS: [&str; 6] = [
    "origin",
    "missing_origin",
    "ip_rate",
    "ip_count",
    "draining",
    "full",
];

/// One shard's counters. Only that shard writes them.
#[derive(Default)]
#[repr(align(128))]
pub struct ShardStats {
    pub connects: AtomicU64,
    /// Per `CLOSE_CODES` index, then `other`.
    pub closes: [AtomicU64; CLOSE_CODES.len() + 1],
    pub auth_failures: [AtomicU64; AUTH_REASONS.len()],
    pub upgrade_refusals: [AtomicU64; UPGRADE_REFUSALS.len()],
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Bytes ever queued, and those dropped unwritten: with `bytes_out`, the queue depth.
    pub bytes_queued: AtomicU64,
    pub bytes_discarded: AtomicU64,
    pub deliveries: AtomicU64,
    /// Frames made again in another encoding (`shard/variants.rs`): once per frame and
    /// encoding on a shard, not per recipient.
    pub transcodes: AtomicU64,
    /// Of the deliveries, those sent as a Fossil delta.
    pub delta_deliveries: AtomicU64,
    pub slow_consumers: AtomicU64,
    /// Queued publications replaced by a newer one of their channel (`conflate`).
    pub conflated: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Gaps in a history channel's offsets closed from the history, and those that could
    /// not be (the subscribers were told).
    pub gaps_recovered: AtomicU64,
    pub gaps_lost: AtomicU64,
    /// TLS sessions that failed (a bad handshake, plaintext on the TLS port, a bad record).
    pub tls_errors: AtomicU64,
}

/// Adds to a counter that only the calling shard writes.
#[inline]
pub fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl ShardStats {
    pub fn close(&self, code: u16) {
        let i = CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(CLOSE_CODES.len());
        bump(&self.closes[i], 1);
    }

    pub fn auth_failure(&self, reason: &str) {
        if let Some(i) = AUTH_REASONS.iter().position(|&r| r == reason) {
            bump(&self.auth_failures[i], 1);
        }
    }

    pub fn upgrade_refused(&self, reason: &str) {
        if let Some(i) = UPGRADE_REFUSALS.iter().position(|&r| r == reason) {
            bump(&self.upgrade_refusals[i], 1);
        }
    }

    /// Bytes queued and not yet written or dropped.
    pub fn queue_depth(&self) -> u64 {
        let queued = self.bytes_queued.load(Ordering::Relaxed);
        let gone =
            self.bytes_out.load(Ordering::Relaxed) + self.bytes_discarded.load(Ordering::Relaxed);
        queued.saturating_sub(gone)
    }
}

/// A latency histogram in microseconds, one per shard.
pub struct Latency(Vec<Mutex<Histogram<u64>>>);

impl Latency {
    fn new(shards: usize) -> Latency {
        Latency(
            (0..shards)
                .map(|_| {
                    Mutex::new(
                        Histogram::new_with_bounds(1, 3_600_000_000, 3)
                            .expect("static bounds are valid"),
                    )
                })
                .collect(),
        )
    }

    /// Records on shard `shard`'s histogram.
    pub fn record(&self, shard: usize, d: Duration) {
        self.record_many(shard, std::iter::once(d));
    }

    /// Records several samples under one lock.
    pub fn record_many(&self, shard: usize, ds: impl IntoIterator<Item = Duration>) {
        let mut h = self.0[shard].lock().unwrap_or_else(|e| e.into_inner());
        for d in ds {
            h.saturating_record((d.as_micros() as u64).max(1));
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds");
        for h in &self.0 {
            let h = h.lock().unwrap_or_else(|e| e.into_inner());
            let _ = all.add(&*h);
        }
        all
    }
}

/// Everything measured in a hub.
pub struct Metrics {
    pub shards: Vec<Arc<ShardStats>>,
    /// From accepting the TCP connection to queuing `welcome`.
    pub connect_to_welcome: Latency,
    /// From the API request's arrival to the frame's write on each shard with subscribers
    /// (for a subscriber paced by `write_interval`, to the start of its wait: `shard::pace`).
    pub publish_to_write: Latency,
    pub started: std::time::Instant,
    /// The certificates of the TLS listeners, for their reload counters (set at start).
    pub tls: std::sync::OnceLock<Vec<Arc<crate::tls::Certs>>>,
}

impl Metrics {
    pub fn new(shards: usize) -> Metrics {
        Metrics {
            shards: (0..shards).map(|_| Arc::default()).collect(),
            connect_to_welcome: Latency::new(shards),
            publish_to_write: Latency::new(shards),
            started: std::time::Instant::now(),
            tls: std::sync::OnceLock::new(),
        }
    }

    /// Adds up one counter over the shards.
    pub fn sum(&self, f: impl Fn(&ShardStats) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }
}

thread_local! {
    static LOCAL: OnceCell<Arc<ShardStats>> = const { OnceCell::new() };
}

/// Counters for threads that are not shards (unit tests): written, never read.
static DISCARD: std::sync::LazyLock<ShardStats> = std::sync::LazyLock::new(ShardStats::default);

/// Makes `stats` the calling shard thread's counters.
pub fn bind_local(stats: Arc<ShardStats>) {
    LOCAL.with(|l| {
        let _ = l.set(stats);
    });
}

/// Runs `f` with the calling shard's counters.
#[inline]
pub fn local<R>(f: impl FnOnce(&ShardStats) -> R) -> R {
    LOCAL.with(|l| match l.get() {
        Some(s) => f(s),
        None => f(&DISCARD),
    })
}
