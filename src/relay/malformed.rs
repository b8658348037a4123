//! What arrives from Redis and cannot be used (garbage on a channel topic, an envelope whose
//! payload is not what its kind says, a backend's bad egress JSON): counted every time, in
//! `ringhub_relay_malformed_total` or `ringhub_egress_malformed_total`, and logged rarely,
//! so that a backend publishing garbage in a loop neither floods the log nor costs more than
//! the counting. Nothing else happens to such a message.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::shared::Shared;

/// At most one log line per kind of complaint in this long.
const EVERY_MS: u64 = 10_000;

/// The first complaint is logged; later ones at most once per `EVERY_MS`, saying how many
/// were left unsaid in between. Process-wide: hubs started side by side in one process (the
/// tests) share the budget, which only thins their logs.
pub struct LogLimit {
    last_ms: AtomicU64,
    unsaid: AtomicU64,
}

impl LogLimit {
    pub const fn new() -> LogLimit {
        LogLimit {
            last_ms: AtomicU64::new(0),
            unsaid: AtomicU64::new(0),
        }
    }

    /// `Some(unsaid)` when this complaint should be logged, with the number of complaints
    /// not logged since the last line; `None` when it should only be counted.
    pub fn admit(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= EVERY_MS;
        let now_ms = now_ms.max(1);
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.unsaid.swap(0, Ordering::Relaxed));
        }
        self.unsaid.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for LogLimit {
    fn default() -> Self {
        LogLimit::new()
    }
}

static RELAY: LogLimit = LogLimit::new();
static EGRESS: LogLimit = LogLimit::new();

/// A relay message (on a channel, `cluster` or `reply` topic) ignored.
pub fn relay(shared: &Shared, topic: &str, bytes: usize, why: &str) {
    if let Some(relay) = shared.relay.as_ref() {
        relay.stats.malformed.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(unsaid) = RELAY.admit(crate::auth::unix_ms()) {
        tracing::warn!(
            topic,
            bytes,
            why,
            unsaid,
            "relay: malformed message ignored (later ones are counted in ringhub_relay_malformed_total, logged at most every 10 s)"
        );
    }
}

/// A backend's egress message ignored: not JSON, an unknown op, or refused by the op.
pub fn egress(shared: &Shared, bytes: usize, why: &str) {
    if let Some(relay) = shared.relay.as_ref() {
        relay.stats.egress_malformed.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(unsaid) = EGRESS.admit(crate::auth::unix_ms()) {
        tracing::warn!(
            bytes,
            error = why,
            unsaid,
            "egress: message ignored (later ones are counted in ringhub_egress_malformed_total, logged at most every 10 s)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_then_one_per_interval_with_the_count_between() {
        let limit = LogLimit::new();
        assert_eq!(limit.admit(5_000), Some(0));
        assert_eq!(limit.admit(5_001), None);
        assert_eq!(limit.admit(14_999), None);
        assert_eq!(limit.admit(15_000), Some(2));
        assert_eq!(limit.admit(15_000), None);
        assert_eq!(limit.admit(40_000), Some(1));
    }
}
