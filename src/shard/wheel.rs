//! A hierarchical timing wheel (Varghese & Lauck, "Hashed and Hierarchical Timing Wheels",
//! 1987, scheme 7), one per shard, driving every per-connection deadline.
//!
//! Time advances in ticks of [`TICK`]. Four levels of 64 slots each:
//!
//! | level | one slot spans | the level spans |
//! |-------|----------------|-----------------|
//! | 0     | 1 tick (10 ms) | 640 ms          |
//! | 1     | 64 ticks       | 40.96 s         |
//! | 2     | 4,096 ticks    | 43.7 min        |
//! | 3     | 262,144 ticks  | 46.6 h          |
//!
//! An entry due `d` ticks from now goes to the lowest level whose span holds `d`, in the slot
//! its deadline's digits at that level name. When the clock reaches the start of a higher
//! level's slot, that slot's entries cascade down to finer levels; a level-0 slot holds
//! exactly the entries due at its tick. Entries further than 46 h away wait in level 3 and
//! are re-placed each time they cascade. Insert is O(1); cancel is O(1) and lazy: callers
//! tag entries with a generation and ignore a fired entry whose generation is stale, so no
//! per-entry bookkeeping is needed to remove it early.

use std::time::{Duration, Instant};

/// Resolution of every deadline.
pub const TICK: Duration = Duration::from_millis(10);
const BITS: u32 = 6;
const SLOTS: usize = 1 << BITS;
const LEVELS: usize = 4;
const MAX_DELTA: u64 = 1 << (BITS * LEVELS as u32);

struct Entry<T> {
    deadline: u64,
    item: T,
}

pub struct Wheel<T> {
    start: Instant,
    /// The last tick processed.
    now: u64,
    len: usize,
    levels: Vec<Vec<Vec<Entry<T>>>>,
}

impl<T> Wheel<T> {
    pub fn new(start: Instant) -> Wheel<T> {
        let levels = (0..LEVELS)
            .map(|_| (0..SLOTS).map(|_| Vec::new()).collect())
            .collect();
        Wheel {
            start,
            now: 0,
            len: 0,
            levels,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn tick_of(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.start);
        (d.as_millis() / TICK.as_millis()) as u64
    }

    /// Schedules `item` for `at` (rounded up to the next tick; never in the past).
    pub fn insert(&mut self, at: Instant, item: T) {
        let d = at.saturating_duration_since(self.start);
        let deadline = d.as_nanos().div_ceil(TICK.as_nanos()) as u64;
        self.len += 1;
        self.place(Entry {
            deadline: deadline.max(self.now + 1),
            item,
        });
    }

    fn place(&mut self, e: Entry<T>) {
        // An entry cascaded down at its own tick has delta 0: it belongs to this tick's slot.
        let delta = (e.deadline - self.now).max(1);
        let level = ((63 - delta.leading_zeros()) / BITS).min(LEVELS as u32 - 1) as usize;
        let target = e.deadline.min(self.now + MAX_DELTA - 1);
        let slot = ((target >> (BITS * level as u32)) as usize) & (SLOTS - 1);
        self.levels[level][slot].push(e);
    }

    /// The earliest time anything may fire or cascade: the ticker sleeps until then.
    pub fn next_due(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let mut best = u64::MAX;
        for level in 0..LEVELS {
            let shift = BITS * level as u32;
            let base = self.now >> shift;
            // A slot of level `l` is handled when the clock reaches the start of its span.
            if let Some(i) = (1..=SLOTS as u64)
                .find(|i| !self.levels[level][((base + i) as usize) & (SLOTS - 1)].is_empty())
            {
                best = best.min((base + i) << shift);
            }
        }
        Some(self.start + TICK * best as u32)
    }

    /// Advances to `now`, pushing every item due by then into `due`, in deadline order.
    pub fn advance(&mut self, now: Instant, due: &mut Vec<T>) {
        let target = self.tick_of(now);
        if self.len == 0 {
            self.now = self.now.max(target);
            return;
        }
        while self.now < target {
            self.now += 1;
            self.cascade();
            let slot = (self.now as usize) & (SLOTS - 1);
            for e in std::mem::take(&mut self.levels[0][slot]) {
                debug_assert!(e.deadline <= self.now);
                self.len -= 1;
                due.push(e.item);
            }
            if self.len == 0 {
                self.now = target;
            }
        }
    }

    fn cascade(&mut self) {
        for level in 1..LEVELS {
            let shift = BITS * level as u32;
            if self.now & ((1 << shift) - 1) != 0 {
                break;
            }
            let slot = ((self.now >> shift) as usize) & (SLOTS - 1);
            for e in std::mem::take(&mut self.levels[level][slot]) {
                self.place(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire_all(delays_ms: &[u64]) -> Vec<(u64, u64)> {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        for &d in delays_ms {
            w.insert(t0 + Duration::from_millis(d), d);
        }
        let mut fired = Vec::new();
        let mut due = Vec::new();
        let mut t = 0;
        while !w.is_empty() {
            t += 10;
            w.advance(t0 + Duration::from_millis(t), &mut due);
            fired.extend(due.drain(..).map(|d| (d, t)));
        }
        fired
    }

    #[test]
    fn every_entry_fires_at_its_tick_across_levels() {
        let delays = [
            0, 1, 10, 15, 630, 640, 650, 5_000, 40_950, 40_960, 41_000, 700_000, 2_621_440,
            2_700_000,
        ];
        for (d, fired_at) in fire_all(&delays) {
            let want = d.div_ceil(10).max(1) * 10;
            assert_eq!(fired_at, want, "delay {d} ms");
        }
    }

    #[test]
    fn next_due_is_never_after_the_next_expiry() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        assert_eq!(w.next_due(), None);
        for ms in [30_000u64, 700, 5_000_000, 90] {
            w.insert(t0 + Duration::from_millis(ms), ms);
        }
        let mut due = Vec::new();
        let mut fired = Vec::new();
        // jump from due time to due time, as the ticker does
        while let Some(at) = w.next_due() {
            w.advance(at, &mut due);
            for d in due.drain(..) {
                assert_eq!(at, t0 + Duration::from_millis(d), "fired exactly on time");
                fired.push(d);
            }
        }
        assert_eq!(fired, vec![90, 700, 30_000, 5_000_000]);
    }

    #[test]
    fn far_deadlines_wait_in_the_top_level() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let far = Duration::from_secs(50 * 3600);
        w.insert(t0 + far, ());
        let mut due = Vec::new();
        w.advance(t0 + far - Duration::from_secs(1), &mut due);
        assert!(due.is_empty());
        w.advance(t0 + far, &mut due);
        assert_eq!(due.len(), 1);
        assert!(w.is_empty());
    }

    #[test]
    fn idle_wheel_jumps_ahead() {
        let t0 = Instant::now();
        let mut w: Wheel<u8> = Wheel::new(t0);
        let mut due = Vec::new();
        w.advance(t0 + Duration::from_secs(3600), &mut due);
        w.insert(
            t0 + Duration::from_secs(3600) + Duration::from_millis(20),
            1,
        );
        w.advance(
            t0 + Duration::from_secs(3600) + Duration::from_millis(10),
            &mut due,
        );
        assert!(due.is_empty());
        w.advance(
            t0 + Duration::from_secs(3600) + Duration::from_millis(20),
            &mut due,
        );
        assert_eq!(due, vec![1]);
    }
}
