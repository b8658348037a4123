//! The shard's deadlines: the timing wheel, and what the ticker task needs to sleep until
//! the next one (it is kicked awake when a sooner deadline is scheduled). What each kind of
//! timer does when it fires is `Core`'s (`shard/timers.rs`).

use std::task::{Context, Waker};
use std::time::Instant;

use crate::shard::wheel::Wheel;

/// What a timer is for; checked against the connection's id when it fires (lazy cancel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// The HTTP request head must be complete by now.
    Handshake,
    /// The `auth` frame must have arrived by now.
    Auth,
    /// The peer had its chance to finish the close handshake.
    Linger,
    /// Time to ping.
    Ping,
    /// Something must have arrived since `ping_interval + pong_timeout` ago.
    Liveness,
    /// `expiring` is due.
    Expiring,
    /// A presence query's answers are due.
    Gather(u64),
    /// The token expires now.
    Expiry,
    /// The shard's streams whose last ask went unanswered ask again (`shard::gaps`; not a
    /// connection's timer).
    StreamsRetry,
}

/// One deadline of one connection (slab `key`, generation `conn`).
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    pub key: usize,
    pub conn: u64,
    pub kind: TimerKind,
}

/// A `Timer` as the wheel holds it: 16 bytes instead of 32 (an idle connection has four or
/// five timers: ping, liveness, expiring, expiry, and a handshake timeout until it fires).
#[derive(Clone, Copy)]
struct Packed {
    key: u32,
    kind: u8,
    /// The connection's id, or a `Gather` timer's query.
    conn: u64,
}

impl Packed {
    fn pack(t: Timer) -> Packed {
        // Slab keys are bounded by the open-file limit; one past u32 would name no connection.
        let key = u32::try_from(t.key).unwrap_or(u32::MAX);
        let (kind, conn) = match t.kind {
            TimerKind::Handshake => (0, t.conn),
            TimerKind::Auth => (1, t.conn),
            TimerKind::Linger => (2, t.conn),
            TimerKind::Ping => (3, t.conn),
            TimerKind::Liveness => (4, t.conn),
            TimerKind::Expiring => (5, t.conn),
            TimerKind::Gather(query) => (6, query),
            TimerKind::Expiry => (7, t.conn),
            TimerKind::StreamsRetry => (8, t.conn),
        };
        Packed { key, kind, conn }
    }

    fn unpack(self) -> Timer {
        let kind = match self.kind {
            0 => TimerKind::Handshake,
            1 => TimerKind::Auth,
            2 => TimerKind::Linger,
            3 => TimerKind::Ping,
            4 => TimerKind::Liveness,
            5 => TimerKind::Expiring,
            6 => TimerKind::Gather(self.conn),
            8 => TimerKind::StreamsRetry,
            _ => TimerKind::Expiry,
        };
        Timer {
            key: self.key as usize,
            conn: self.conn,
            kind,
        }
    }
}

pub struct Timers {
    wheel: Wheel<Packed>,
    /// What `advance` takes out of the wheel, before it is unpacked.
    due: Vec<Packed>,
    /// When the ticker will next look at the wheel (None: it waits for a kick).
    planned: Option<Instant>,
    /// The ticker must recompute its sleep.
    kicked: bool,
    ticker: Option<Waker>,
}

impl Timers {
    pub fn new(now: Instant) -> Timers {
        Timers {
            wheel: Wheel::new(now),
            due: Vec::new(),
            planned: None,
            kicked: false,
            ticker: None,
        }
    }

    /// Schedules `timer` at `at`; wakes the ticker when that is sooner than it planned.
    pub fn schedule(&mut self, at: Instant, timer: Timer) {
        self.wheel.insert(at, Packed::pack(timer));
        if self.planned.is_none_or(|planned| at < planned) {
            self.planned = Some(at);
            self.kicked = true;
            if let Some(w) = self.ticker.take() {
                w.wake();
            }
        }
    }

    /// For the ticker: when to look next (None: nothing is scheduled).
    pub fn plan(&mut self) -> Option<Instant> {
        self.planned = self.wheel.next_due();
        self.planned
    }

    /// For the ticker: was it kicked since it planned? If not, remember whom to wake.
    pub fn poll_kick(&mut self, cx: &Context<'_>) -> bool {
        if std::mem::take(&mut self.kicked) {
            return true;
        }
        self.ticker = Some(cx.waker().clone());
        false
    }

    /// The timers due by `now`, into `due`.
    pub fn advance(&mut self, now: Instant, due: &mut Vec<Timer>) {
        self.wheel.advance(now, &mut self.due);
        due.extend(self.due.drain(..).map(Packed::unpack));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn timer(key: usize) -> Timer {
        Timer {
            key,
            conn: 1,
            kind: TimerKind::Ping,
        }
    }

    #[test]
    fn a_sooner_deadline_kicks_the_ticker_and_a_later_one_does_not() {
        let start = Instant::now();
        let mut t = Timers::new(start);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let cx = Context::from_waker(&waker);
        assert_eq!(t.plan(), None);
        assert!(!t.poll_kick(&cx), "nothing scheduled yet");
        t.schedule(start + Duration::from_secs(5), timer(1));
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "woken");
        assert!(t.poll_kick(&cx));
        assert!(t.plan().is_some());
        assert!(!t.poll_kick(&cx));
        t.schedule(start + Duration::from_secs(9), timer(2));
        assert_eq!(
            count.0.load(Ordering::Relaxed),
            1,
            "later than planned: no wakeup"
        );
        t.schedule(start + Duration::from_secs(1), timer(3));
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn every_kind_survives_packing() {
        let kinds = [
            TimerKind::Handshake,
            TimerKind::Auth,
            TimerKind::Linger,
            TimerKind::Ping,
            TimerKind::Liveness,
            TimerKind::Expiring,
            TimerKind::Gather(u64::MAX - 1),
            TimerKind::Expiry,
        ];
        for kind in kinds {
            let t = Packed::pack(Timer {
                key: 7,
                conn: 9,
                kind,
            })
            .unpack();
            assert_eq!((t.key, t.kind), (7, kind));
            if !matches!(kind, TimerKind::Gather(_)) {
                assert_eq!(t.conn, 9);
            }
        }
        assert_eq!(std::mem::size_of::<Packed>(), 16);
    }

    #[test]
    fn due_timers_come_out_in_time() {
        let start = Instant::now();
        let mut t = Timers::new(start);
        t.schedule(start + Duration::from_millis(30), timer(1));
        t.schedule(start + Duration::from_secs(3), timer(2));
        let mut due = Vec::new();
        t.advance(start + Duration::from_millis(100), &mut due);
        assert_eq!(due.iter().map(|t| t.key).collect::<Vec<_>>(), vec![1]);
        due.clear();
        t.advance(start + Duration::from_secs(4), &mut due);
        assert_eq!(due.iter().map(|t| t.key).collect::<Vec<_>>(), vec![2]);
    }
}
