//! Rate limits of the server API: a token bucket (`crate::limits`) per client address and
//! one per key name (`api_rate_per_ip` / `api_burst_per_ip`, `api_rate_per_key` /
//! `api_burst_per_key`). The address is checked before the key is, so that guessing keys
//! is limited too; keys that share a name (a rotation) share a bucket. Past the limit the
//! answer is 429 with `Retry-After`.
//!
//! Both maps live on the control thread, behind a mutex that only its tasks take. They are
//! swept of full buckets (which would forget nothing) when they grow past [`SWEEP_AT`], and
//! then each time they double, so that a flood from many addresses can grow them only as
//! far as it keeps their buckets busy, and a sweep costs O(1) per request amortized.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::limits::{Rate, TokenBucket};

const SWEEP_AT: usize = 4096;

struct Buckets<K> {
    rate: Rate,
    /// The buckets, and the size at which they are next swept.
    map: Mutex<(HashMap<K, TokenBucket>, usize)>,
}

impl<K: Hash + Eq> Buckets<K> {
    fn new(per_second: u32, burst: u32) -> Buckets<K> {
        Buckets {
            rate: Rate::new(per_second, burst.max(1)),
            map: Mutex::new((HashMap::new(), SWEEP_AT)),
        }
    }

    fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        if self.rate.unlimited() {
            return Ok(());
        }
        let mut guard = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (map, sweep_at) = &mut *guard;
        let rate = self.rate;
        if map.len() >= *sweep_at {
            map.retain(|_, b| !b.is_full(rate, now));
            *sweep_at = (map.len() * 2).max(SWEEP_AT);
        }
        map.entry(key)
            .or_insert_with(|| TokenBucket::full(rate, now))
            .take(rate, now)
    }
}

pub struct Throttle {
    per_ip: Buckets<IpAddr>,
    per_key: Buckets<Arc<str>>,
}

impl Throttle {
    pub fn new(config: &Config) -> Throttle {
        Throttle {
            per_ip: Buckets::new(config.api_rate_per_ip, config.api_burst_per_ip),
            per_key: Buckets::new(config.api_rate_per_key, config.api_burst_per_key),
        }
    }

    /// One request from `ip`, or how long until it may send one.
    pub fn ip(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.per_ip.take(ip, now)
    }

    /// One request with a key named `name`, or how long until it may send one.
    pub fn key(&self, name: &Arc<str>, now: Instant) -> Result<(), Duration> {
        self.per_key.take(name.clone(), now)
    }
}

/// The `Retry-After` value of a wait: whole seconds, at least 1.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_address_and_name_apart() {
        let config = Config {
            api_rate_per_ip: 10,
            api_burst_per_ip: 2,
            api_rate_per_key: 1,
            api_burst_per_key: 1,
            ..Config::default()
        };
        let t = Throttle::new(&config);
        let now = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(t.ip(a, now).is_ok() && t.ip(a, now).is_ok());
        let wait = t.ip(a, now).unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert_eq!(retry_after(wait), 1);
        assert!(t.ip(b, now).is_ok());
        assert!(t.ip(a, now + Duration::from_millis(100)).is_ok());
        let name: Arc<str> = "backend".into();
        assert!(t.key(&name, now).is_ok());
        assert!(t.key(&name, now).is_err());
        assert!(t.key(&"other".into(), now).is_ok());
    }

    #[test]
    fn unlimited_by_default_and_swept() {
        let t = Throttle::new(&Config::default());
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(t.ip("10.0.0.1".parse().unwrap(), now).is_ok());
        }
        let config = Config {
            api_rate_per_ip: 1000,
            ..Config::default()
        };
        let t = Throttle::new(&config);
        for i in 0..SWEEP_AT as u32 {
            let _ = t.ip(IpAddr::from(i.to_be_bytes()), now);
        }
        let later = now + Duration::from_secs(1);
        let _ = t.ip("10.0.0.1".parse().unwrap(), later);
        assert!(t.per_ip.map.lock().unwrap().0.len() < SWEEP_AT);
    }
}
