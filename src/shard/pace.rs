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

use std::time::{Duration, Instant};

use super::core::Core;
use crate::sys::timer::Timer;

/// The epoll token of the shard's pacing timer (no connection's: a connection's token
/// holds its slab key in the low half, and no slab reaches `u32::MAX` entries).
pub const TIMER: u64 = u64::MAX;

pub struct Pacer {
    /// `write_interval` in microseconds; 0 writes every connection at the end of each pass.
    interval: u32,
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
        Pacer {
            interval: interval.as_micros().min(u32::MAX as u128 / 2) as u32,
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
        let interval = pace.interval;
        let mut soonest = u32::MAX;
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            // Gone, or listed twice (`Core::on_input`) and written already.
            let Some(conn) = self.conns.get_mut(key).filter(|c| c.dirty) else {
                continue;
            };
            let since = (pace.now() as u32).wrapping_sub(conn.last_write);
            if since >= interval || std::mem::take(&mut conn.answering) {
                conn.dirty = false;
                conn.flush();
                conn.last_write = pace.now() as u32;
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

    /// The pacing timer fired: every connection waiting is written.
    pub fn flush_waiting(&mut self) {
        let pace = &mut self.pace;
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
                    conn.dirty = false;
                    conn.answering = false;
                    conn.flush();
                    conn.last_write = pace.now() as u32;
                }
            }
        }
        pace.waiting = waiting;
    }
}
