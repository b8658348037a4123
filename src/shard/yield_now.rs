//! Yielding to the other tasks of a shard.
//!
//! monoio puts a task that wakes itself while it is being polled at the *front* of the run
//! queue (`LocalScheduler::yield_now`), so the usual "wake yourself and return `Pending`"
//! polls the same task again at once. A loop that always has work (the accept loop under a
//! connect storm, an inbox that never empties, a reactor whose sockets are always readable)
//! then starves every other task of the shard (a reactor that handed its writes to another
//! task delivered nothing at a full-rate fan-out). Here a yielding task hands its waker to the
//! shard's pump, a task woken at the *back* of the queue, which wakes it in its own turn:
//! everything queued in between runs first.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Yields {
    /// The tasks that yielded since the pump last ran.
    waiting: Vec<Waker>,
    /// The pump, parked; None while it is queued (or before it first ran).
    pump: Option<Waker>,
    /// The pump runs on this thread (else a yield falls back to waking itself).
    started: bool,
}

thread_local! {
    /// One shard per thread.
    static YIELDS: RefCell<Yields> = RefCell::default();
}

/// Gives the other tasks of the shard one turn, then resolves.
pub(super) struct YieldNow(pub(super) bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        YIELDS.with(|y| {
            let mut y = y.borrow_mut();
            if !y.started {
                // No pump on this thread (a test's runtime): the best there is.
                cx.waker().wake_by_ref();
                return;
            }
            y.waiting.push(cx.waker().clone());
            if let Some(pump) = y.pump.take() {
                pump.wake();
            }
        });
        Poll::Pending
    }
}

/// The shard's pump: wakes the tasks that yielded, from its own turn. Spawned once per shard.
pub(super) async fn pump() {
    Pump.await
}

struct Pump;

impl Future for Pump {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let waiting = YIELDS.with(|y| {
            let mut y = y.borrow_mut();
            y.started = true;
            y.pump = Some(cx.waker().clone());
            std::mem::take(&mut y.waiting)
        });
        // Woken from another task's poll, each goes to the back of the queue.
        for w in waiting {
            w.wake();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Two tasks that yield in a loop take turns: each yield lets the other run.
    #[test]
    fn tasks_that_yield_take_turns() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("a runtime");
        let log = rt.block_on(async {
            let log = Rc::new(RefCell::new(String::new()));
            monoio::spawn(pump());
            let turns = |name: char| {
                let log = log.clone();
                monoio::spawn(async move {
                    for _ in 0..3 {
                        log.borrow_mut().push(name);
                        YieldNow(false).await;
                    }
                })
            };
            let (a, b) = (turns('a'), turns('b'));
            a.await;
            b.await;
            let log = log.borrow().clone();
            log
        });
        // Waking itself, a task is polled again at once: "aaabbb".
        assert_eq!(log, "ababab");
    }
}
