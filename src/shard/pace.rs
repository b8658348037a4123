//! Paced writes: a connection is written at most once per `write_interval`
//! (docs/protocol.md, configuration). What is queued for a connection written longer ago
//! than that, or for one that sent something in this pass (its replies), leaves at the end
//! of the pass, as it would without pacing; what is queued for one written more recently
//! waits for the rest of its interval, with whatever else comes for it meanwhile, and
//! leaves in the same `sendmsg`. A quiet connection is never delayed; a busy subscriber gets
//! many deliveries per system call instead of one.
//!
//! On loopback and fast links the cost of a send is per segment, not per byte (the
//! receiving side's TCP path is paid by the sender: PERFORMANCE.md, "Where the time
//! goes"), so at high rates this divides the kernel's share of a delivery by the number of
//! deliveries that share a send, for at most one interval of added delay.
//!
//! The waits end on a `timerfd` in the shard's epoll set (`sys::timer`), reported to the
//! reactor as [`TIMER`], set for the soonest connection due; it then writes every connection
//! waiting. So the subscribers of a busy channel stay in step: they are written in one burst
//! per interval, while the reader on the other end is awake, which costs the kernel less
//! per send than the same writes spread over the interval, each waking it (measured:
//! PERFORMANCE.md, issue 18).
//!
//! A shard whose burst of paced writes takes more than half an interval is close to
//! saturation: its writes queue behind each other, and every delivery waits longer than the
//! interval. So the interval in force stretches to twice the last burst (`STRETCH`, at most
//! four times `write_interval`): more deliveries share each send, the kernel's cost per
//! delivery falls, and the shard leaves saturation instead of falling behind. It is back to
//! `write_interval` after the first burst that is short again. (Measured: PERFORMANCE.md,
//! issue 18, change 10.)

use std::time::{Duration, Instant};

use super::conn::Conn;
use super::core::Core;
use crate::sys::timer::Timer;

/// The epoll token of the shard's pacing timer (no connection's: a connection's token
/// holds its slab key in the low half, and no slab reaches `u32::MAX` entries).
pub const TIMER: u64 = u64::MAX;

/// The interval in force is at least this many times the last burst of paced writes (in
/// tenths: 2×), so that the bursts take at most about half of the shard's time.
const STRETCH: u32 = 20;

/// ... and at most this many times `write_interval`.
const MAX_STRETCH: u32 = 4;

/// The interval in force after a burst of paced writes that took `took` µs.
fn stretched(interval: u32, took: u32) -> u32 {
    let wanted = took.saturating_mul(STRETCH) / 10;
    wanted.clamp(interval, interval.saturating_mul(MAX_STRETCH))
}

pub struct Pacer {
    /// `write_interval` in microseconds; 0 writes every connection at the end of each pass.
    interval: u32,
    /// The interval in force: `interval`, stretched while the shard is saturated.
    current: u32,
    /// What "now" is counted from, in microseconds.
    epoch: Instant,
    /// Connections with output waiting for the rest of their interval. Each is also marked
    /// `dirty`, so nothing lists it twice; an entry whose connection was written since, or
    /// left, is skipped.
    waiting: Vec<usize>,
    /// Set when a connection starts waiting; `None` when the interval is 0.
    timer: Option<Timer>,
    /// When the timer is set to fire (µs since `epoch`).
    armed_for: Option<u64>,
}

impl Pacer {
    pub fn new(interval: Duration) -> Pacer {
        let interval = interval.as_micros().min(u32::MAX as u128 / 8) as u32;
        Pacer {
            interval,
            current: interval,
            epoch: Instant::now(),
            waiting: Vec::new(),
            timer: None,
            armed_for: None,
        }
    }

    /// The timer to register with the shard's epoll set, when pacing is on.
    pub fn start_timer(&mut self) -> std::io::Result<Option<std::os::fd::RawFd>> {
        if self.interval == 0 {
            return Ok(None);
        }
        let timer = Timer::new()?;
        let fd = timer.fd();
        self.timer = Some(timer);
        Ok(Some(fd))
    }

    /// Microseconds since the epoch. A connection keeps the low 32 bits of its last write
    /// (`Conn::last_write`), which wrap about every 71 minutes: only differences under
    /// `interval` are asked of them.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Sets the timer `after` from now, unless it is set to fire sooner already.
    fn arm(&mut self, after: u32) {
        let Some(timer) = &self.timer else { return };
        let at = self.now() + after as u64;
        if self.armed_for.is_none_or(|armed| at < armed) {
            timer.set(Duration::from_micros(after as u64));
            self.armed_for = Some(at);
        }
    }
}

impl Core {
    /// Writes what is queued for every dirty connection not written within the last
    /// `write_interval`, or that sent something in this pass; the others wait for the rest
    /// of theirs. The end of a reactor pass, an inbox batch and a timer tick.
    pub fn flush_paced(&mut self) {
        let pace = &mut self.pace;
        if pace.timer.is_none() {
            return self.flush_dirty();
        }
        let interval = pace.current;
        let mut soonest = u32::MAX;
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            // Gone, or listed twice (`Core::on_input`) and written already.
            let Some(conn) = self.conns.get_mut(key).filter(|c| c.dirty) else {
                continue;
            };
            let since = (pace.now() as u32).wrapping_sub(conn.last_write);
            if since >= interval || std::mem::take(&mut conn.answering) {
                conn.write_out(pace);
            } else {
                pace.waiting.push(key);
                soonest = soonest.min(interval - since);
            }
        }
        self.dirty = dirty;
        if soonest != u32::MAX {
            pace.arm(soonest);
        }
    }

    /// The pacing timer fired: every connection waiting is written, and the time that took
    /// sets the interval in force until the next burst.
    pub fn flush_waiting(&mut self) {
        let pace = &mut self.pace;
        let started = pace.now();
        pace.armed_for = None;
        if let Some(timer) = &pace.timer {
            // Forget the expiry just seen.
            timer.clear();
        }
        let mut waiting = std::mem::take(&mut pace.waiting);
        for key in waiting.drain(..) {
            if let Some(conn) = self.conns.get_mut(key) {
                // Unless written since (a forced flush), or the key is another's now.
                if conn.dirty {
                    conn.answering = false;
                    conn.write_out(pace);
                }
            }
        }
        pace.waiting = waiting;
        let took = pace.now().saturating_sub(started);
        pace.current = stretched(pace.interval, took.min(u32::MAX as u64) as u32);
    }
}

impl Conn {
    /// Writes what is queued for this dirty connection and starts its interval over. Every
    /// write of a dirty connection, paced or not, ends here (each caller says what becomes
    /// of `answering`).
    pub(super) fn write_out(&mut self, pace: &Pacer) {
        self.dirty = false;
        self.flush();
        self.last_write = pace.now() as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_stretches_only_while_bursts_take_over_half_of_it() {
        // 10 ms: a burst of 1 ms, or of half the interval, changes nothing.
        assert_eq!(stretched(10_000, 1_000), 10_000);
        assert_eq!(stretched(10_000, 5_000), 10_000);
        // A burst of 9 ms: the next interval is 18 ms.
        assert_eq!(stretched(10_000, 9_000), 18_000);
        // Never past four times `write_interval`, however long the burst.
        assert_eq!(stretched(10_000, 200_000), 40_000);
        assert_eq!(stretched(10_000, u32::MAX), 40_000);
    }

    #[test]
    fn a_short_burst_brings_it_back() {
        let mut pace = Pacer::new(Duration::from_millis(10));
        pace.current = stretched(pace.interval, 15_000);
        assert_eq!(pace.current, 30_000);
        pace.current = stretched(pace.interval, 500);
        assert_eq!(pace.current, 10_000);
    }
}
