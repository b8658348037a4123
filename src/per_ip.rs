//! Per-IP admission: `connects_per_second_per_ip` and `max_connections_per_ip`.
//!
//! SO_REUSEPORT spreads one address's connections over every shard, so these counts cannot
//! be shard-local. They live in one `DashMap` keyed by IP, which is touched only when a
//! connection is admitted (at the upgrade) and when it ends — never on the message path —
//! so its per-bucket locks see at most one short critical section per connect and
//! disconnect. An entry is dropped once its address has no connection and a full bucket,
//! so the map holds only addresses that are connected or have connected recently.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::limits::{Rate, TokenBucket};

/// Smallest map size that triggers a sweep.
const SWEEP_MIN: usize = 4096;

struct IpState {
    connections: usize,
    connects: TokenBucket,
}

/// Why an address may not connect now (HTTP 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRefusal {
    /// Too many connection attempts per second; retry after this long.
    Rate(Duration),
    /// Too many open connections from this address.
    Count,
}

pub struct PerIp {
    map: DashMap<IpAddr, IpState>,
    /// The map's size at which idle entries are swept next (doubles as it grows).
    sweep_at: AtomicUsize,
    rate: Rate,
    max_connections: usize,
}

impl PerIp {
    pub fn new(connects_per_second: u32, max_connections: usize) -> PerIp {
        // The bucket holds one second's worth of attempts.
        PerIp {
            map: DashMap::new(),
            sweep_at: AtomicUsize::new(SWEEP_MIN),
            rate: Rate::new(connects_per_second, connects_per_second),
            max_connections,
        }
    }

    /// Counts a connection attempt against the address's rate.
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> Result<(), IpRefusal> {
        if self.rate.unlimited() {
            return Ok(());
        }
        let mut entry = self.map.entry(ip).or_insert_with(|| IpState {
            connections: 0,
            connects: TokenBucket::full(self.rate, now),
        });
        let taken = entry.connects.take(self.rate, now).map_err(IpRefusal::Rate);
        drop(entry);
        self.sweep_if_grown(now);
        taken
    }

    /// Drops the entries of addresses with no connection and a full bucket once the map has
    /// doubled since the last sweep, so that addresses which only ever attempt (and are
    /// refused) cannot grow it without bound.
    fn sweep_if_grown(&self, now: Instant) {
        let at = self.sweep_at.load(Ordering::Relaxed);
        if self.map.len() < at
            || self
                .sweep_at
                .compare_exchange(at, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let rate = self.rate;
        self.map.retain(|_, s| {
            s.connections > 0 || !(rate.unlimited() || s.connects.is_full(rate, now))
        });
        self.sweep_at
            .store((self.map.len() * 2).max(SWEEP_MIN), Ordering::Release);
    }

    /// Admits one more open connection from the address, unless it has the most allowed.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), IpRefusal> {
        let mut entry = self.map.entry(ip).or_insert_with(|| IpState {
            connections: 0,
            connects: TokenBucket::full(self.rate, now),
        });
        if entry.connections >= self.max_connections {
            return Err(IpRefusal::Count);
        }
        entry.connections += 1;
        Ok(())
    }

    /// An admitted connection ended.
    pub fn release(&self, ip: IpAddr, now: Instant) {
        if let Some(mut entry) = self.map.get_mut(&ip) {
            entry.connections = entry.connections.saturating_sub(1);
        }
        let rate = self.rate;
        self.map.remove_if(&ip, |_, s| {
            s.connections == 0 && (rate.unlimited() || s.connects.is_full(rate, now))
        });
    }

    /// Open connections from an address (for tests and metrics).
    pub fn connections(&self, ip: IpAddr) -> usize {
        self.map.get(&ip).map_or(0, |s| s.connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_count_per_address() {
        let limits = PerIp::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limits.attempt(a, t0), Ok(()));
        }
        assert!(matches!(limits.attempt(a, t0), Err(IpRefusal::Rate(_))));
        assert_eq!(
            limits.attempt(b, t0),
            Ok(()),
            "another address is not affected"
        );
        assert_eq!(limits.admit(a, t0), Ok(()));
        assert_eq!(limits.admit(a, t0), Ok(()));
        assert_eq!(limits.admit(a, t0), Err(IpRefusal::Count));
        limits.release(a, t0);
        assert_eq!(limits.admit(a, t0), Ok(()));
        limits.release(a, t0);
        limits.release(a, t0);
        assert_eq!(limits.connections(a), 0);
        // forgotten once idle and refilled
        limits.release(a, t0 + Duration::from_secs(2));
        assert!(limits.map.get(&a).is_none());
    }

    #[test]
    fn addresses_that_only_attempt_are_swept() {
        let limits = PerIp::new(1, 10);
        let t0 = Instant::now();
        for i in 0..20_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = limits.attempt(ip, t0 + Duration::from_millis(i as u64));
        }
        assert!(limits.map.len() < 3 * SWEEP_MIN, "{}", limits.map.len());
    }
}
