//! Rate limiting: a token bucket (Turner, "New directions in communications", 1986; the
//! form used by most traffic shapers). A bucket holds up to `capacity` tokens, refills at
//! `rate` tokens per second, and each event takes one; an event finding the bucket empty is
//! refused, and told how long until a token is back.
//!
//! Buckets are plain values, owned by whoever keeps the state they limit: per user on the
//! user's shard (no lock), per IP in the shared map that counts connections by address.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

/// Rate and capacity of a family of buckets.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_second: f64,
    pub capacity: f64,
}

impl Rate {
    pub fn new(per_second: u32, capacity: u32) -> Rate {
        Rate {
            per_second: per_second as f64,
            capacity: capacity.max(1) as f64,
        }
    }

    /// A rate of zero means no limit.
    pub fn unlimited(&self) -> bool {
        self.per_second <= 0.0
    }
}

impl TokenBucket {
    pub fn full(rate: Rate, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: rate.capacity,
            last: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.capacity);
        self.last = now;
    }

    /// Takes a token, or says how long until one is back.
    pub fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        if rate.unlimited() {
            return Ok(());
        }
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.per_second,
            ))
        }
    }

    /// Back to full capacity (nothing would be lost by forgetting it).
    pub fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let mut b = *self;
        b.refill(rate, now);
        b.tokens >= rate.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let rate = Rate::new(10, 5);
        let t0 = Instant::now();
        let mut b = TokenBucket::full(rate, t0);
        for _ in 0..5 {
            assert!(b.take(rate, t0).is_ok());
        }
        let wait = b.take(rate, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(99) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(b.take(rate, t0 + Duration::from_millis(100)).is_ok());
        assert!(b.take(rate, t0 + Duration::from_millis(100)).is_err());
        assert!(!b.is_full(rate, t0 + Duration::from_millis(400)));
        assert!(b.is_full(rate, t0 + Duration::from_millis(600)));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let rate = Rate::new(0, 0);
        let t0 = Instant::now();
        let mut b = TokenBucket::full(rate, t0);
        for _ in 0..1000 {
            assert!(b.take(rate, t0).is_ok());
        }
    }
}
