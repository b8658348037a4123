//! A circuit breaker for one backend (docs/rpc.md, "Circuit breakers"): closed while the
//! backend answers; open, refusing calls at once without sending anything, after too many
//! failures; half-open after `open_for`, letting a few probe calls through, which close it
//! when they all succeed and open it again at the first failure.
//!
//! Failures are timeouts, unreachable backends and 5xx answers; a 4xx answer is the
//! backend's judgement of the call, not a fault of the backend, and counts as a success.
//! The breaker knows nothing of HTTP: its user says what each outcome was.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When a breaker opens, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Opens after this many failures in a row (0: never on this count).
    pub consecutive_failures: u32,
    /// Opens when at least this share of the last `window` calls failed (0: never)...
    pub failure_ratio: f64,
    /// ...once there are at least `min_calls` of them.
    pub min_calls: u32,
    /// The calls the ratio is taken over.
    pub window: u32,
    /// How long it stays open before probing.
    pub open_for: Duration,
    /// Calls let through while half-open; all must succeed to close it.
    pub half_open_calls: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            consecutive_failures: 5,
            failure_ratio: 0.5,
            min_calls: 10,
            window: 20,
            open_for: Duration::from_secs(5),
            half_open_calls: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    /// The name used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

/// May a call go to the backend?
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Yes; report its outcome with `record`.
    Go,
    /// No: the breaker is open for this much longer.
    Refused { retry_after: Duration },
}

pub struct Breaker {
    settings: Settings,
    state: State,
    /// The last `window` outcomes while closed (true: failed).
    outcomes: VecDeque<bool>,
    in_a_row: u32,
    /// When it opened (while open).
    opened: Instant,
    /// Probes let through and probes that succeeded (while half-open).
    probes: u32,
    probed_ok: u32,
}

impl Breaker {
    pub fn new(settings: Settings) -> Breaker {
        Breaker {
            outcomes: VecDeque::with_capacity(settings.window as usize),
            settings,
            state: State::Closed,
            in_a_row: 0,
            opened: Instant::now(),
            probes: 0,
            probed_ok: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a call may go now. Returns a transition (open to half-open) when one happened.
    pub fn admit(&mut self, now: Instant) -> (Admission, Option<State>) {
        let mut moved = None;
        if self.state == State::Open {
            let until = self.opened + self.settings.open_for;
            if now < until {
                let retry_after = until - now;
                return (Admission::Refused { retry_after }, None);
            }
            self.state = State::HalfOpen;
            self.probes = 0;
            self.probed_ok = 0;
            moved = Some(State::HalfOpen);
        }
        if self.state == State::HalfOpen {
            if self.probes >= self.settings.half_open_calls.max(1) {
                // The probes are out: the others wait for their verdict.
                let retry_after = self.settings.open_for.min(Duration::from_secs(1));
                return (Admission::Refused { retry_after }, moved);
            }
            self.probes += 1;
        }
        (Admission::Go, moved)
    }

    /// The outcome of a call that `admit` let go. Returns the new state when it changed.
    pub fn record(&mut self, failed: bool, now: Instant) -> Option<State> {
        match self.state {
            State::Closed => {
                self.in_a_row = if failed { self.in_a_row + 1 } else { 0 };
                if self.outcomes.len() >= self.settings.window.max(1) as usize {
                    self.outcomes.pop_front();
                }
                self.outcomes.push_back(failed);
                self.should_open().then(|| self.open(now))
            }
            State::HalfOpen if failed => Some(self.open(now)),
            State::HalfOpen => {
                self.probed_ok += 1;
                (self.probed_ok >= self.settings.half_open_calls.max(1)).then(|| self.close())
            }
            // A call let through before it opened: already judged.
            State::Open => None,
        }
    }

    fn should_open(&self) -> bool {
        let s = &self.settings;
        if s.consecutive_failures > 0 && self.in_a_row >= s.consecutive_failures {
            return true;
        }
        let calls = self.outcomes.len() as u32;
        if s.failure_ratio <= 0.0 || calls < s.min_calls.max(1) {
            return false;
        }
        let failures = self.outcomes.iter().filter(|&&f| f).count() as f64;
        failures / calls as f64 >= s.failure_ratio
    }

    fn open(&mut self, now: Instant) -> State {
        self.state = State::Open;
        self.opened = now;
        State::Open
    }

    fn close(&mut self) -> State {
        self.state = State::Closed;
        self.outcomes.clear();
        self.in_a_row = 0;
        State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            consecutive_failures: 3,
            failure_ratio: 0.5,
            min_calls: 4,
            window: 4,
            open_for: Duration::from_secs(10),
            half_open_calls: 2,
        }
    }

    fn call(b: &mut Breaker, failed: bool, now: Instant) -> Option<State> {
        assert_eq!(b.admit(now).0, Admission::Go);
        b.record(failed, now)
    }

    #[test]
    fn failures_in_a_row_open_it_and_it_refuses_until_open_for_passes() {
        let t = Instant::now();
        let mut b = Breaker::new(settings());
        assert_eq!(call(&mut b, true, t), None);
        assert_eq!(call(&mut b, true, t), None);
        assert_eq!(call(&mut b, true, t), Some(State::Open));
        let later = t + Duration::from_secs(4);
        let (admission, moved) = b.admit(later);
        assert_eq!(
            admission,
            Admission::Refused {
                retry_after: Duration::from_secs(6)
            }
        );
        assert_eq!(moved, None);
    }

    #[test]
    fn the_ratio_needs_min_calls() {
        let t = Instant::now();
        let mut b = Breaker::new(settings());
        assert_eq!(call(&mut b, true, t), None);
        assert_eq!(call(&mut b, false, t), None);
        assert_eq!(call(&mut b, true, t), None, "3 calls: below min_calls");
        assert_eq!(call(&mut b, false, t), Some(State::Open), "2 of 4 failed");
    }

    #[test]
    fn successes_keep_it_closed() {
        let t = Instant::now();
        let mut b = Breaker::new(settings());
        for _ in 0..100 {
            assert_eq!(call(&mut b, false, t), None);
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn half_open_lets_probes_through_and_closes_when_they_succeed() {
        let t = Instant::now();
        let mut b = Breaker::new(settings());
        for _ in 0..3 {
            call(&mut b, true, t);
        }
        let t = t + Duration::from_secs(10);
        assert_eq!(b.admit(t), (Admission::Go, Some(State::HalfOpen)));
        assert_eq!(b.admit(t), (Admission::Go, None));
        assert!(
            matches!(b.admit(t).0, Admission::Refused { .. }),
            "2 probes only"
        );
        assert_eq!(b.record(false, t), None);
        assert_eq!(b.record(false, t), Some(State::Closed));
        assert_eq!(call(&mut b, true, t), None, "a fresh window");
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let t = Instant::now();
        let mut b = Breaker::new(settings());
        for _ in 0..3 {
            call(&mut b, true, t);
        }
        let t = t + Duration::from_secs(11);
        assert_eq!(b.admit(t).1, Some(State::HalfOpen));
        assert_eq!(b.record(true, t), Some(State::Open));
        assert!(matches!(b.admit(t).0, Admission::Refused { .. }));
    }
}
