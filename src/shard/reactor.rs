//! The shard's reactor: one task that serves the readiness of every connection of the shard.
//! Each connection's socket is in the shard's epoll set (`sys::epoll`); the reactor waits
//! until the set is readable (one poll through the runtime, io_uring or epoll), takes every
//! ready socket with one `epoll_wait`, reads each once into the shard's buffer and hands the
//! bytes to the shard. What the reads of a pass queued is written at the end of the pass.
//! An idle connection therefore has no task, no armed poll and no runtime state: only its
//! record in the slab and its entry in the kernel's set.
//!
//! The shard asks the reactor to look at a connection again by signalling it
//! (`Conn::signal`): it is done (a timeout, a write error), its socket is full (watch for
//! writability), or the token store or connect proxy vouched for it (`resume_authenticated`).

use std::cell::RefCell;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::core::Step;
use super::Shard;
use crate::route::inbox::{Handoff, ShardMsg};
use crate::sys;
use crate::sys::epoll::Interest;

/// Sockets one `epoll_wait` reports at most; more wait for the next pass.
pub const BATCH: usize = 256;

/// The connections signalled since the reactor last looked, and the reactor to wake.
#[derive(Default)]
struct Signals {
    conns: Vec<(u32, u64)>,
    waker: Option<Waker>,
}

thread_local! {
    /// One shard per thread: the signals of this thread's shard.
    static SIGNALS: RefCell<Signals> = RefCell::default();
}

/// Asks the reactor of the current shard to look at connection `key` (with `id`) again.
pub fn signal(key: u32, id: u64) {
    SIGNALS.with(|s| {
        let mut s = s.borrow_mut();
        s.conns.push((key, id));
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    });
}

/// The token a socket is registered with: its slab key, and its id's low half against a
/// report for a key taken since by another connection.
fn token(key: usize, id: u64) -> u64 {
    (id << 32) | key as u64
}

/// Registers a connection just put in the slab; false (and the connection forgotten) if the
/// kernel refuses (e.g. `fs.epoll.max_user_watches`).
pub fn register(shard: &Shard, key: usize) -> bool {
    let mut core = shard.core.borrow_mut();
    let conn = &core.conns[key];
    match shard
        .epoll
        .borrow()
        .add(conn.fd(), token(key, conn.id), Interest::Read)
    {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(shard = core.index, error = %e, "cannot watch a connection");
            core.remove(key);
            false
        }
    }
}

/// A connection from another shard: registered, opened, and the TLS ciphertext it brought
/// handled first.
pub fn adopt(shard: &Shard, h: Handoff) {
    let Handoff {
        socket,
        mut detached,
    } = h;
    let backlog = std::mem::take(&mut detached.tls_backlog);
    let (key, tls) = {
        let mut core = shard.core.borrow_mut();
        let key = core.adopt(socket, detached);
        (key, core.conns[key].tls.is_some())
    };
    if !register(shard, key) {
        return;
    }
    if tls {
        let step = super::tls::input(shard, key, &backlog);
        finish(shard, key, step);
    }
}

/// The reactor's loop, for the life of the shard.
pub async fn run(shard: Rc<Shard>) {
    let ready = match shard.epoll.borrow().try_clone().and_then(|fd| {
        // The set is polled for readability as a socket would be: monoio polls any
        // descriptor this way (a PollAdd under io_uring, its own epoll otherwise), and
        // nothing but `readable` is ever called on this handle.
        monoio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))
    }) {
        Ok(ready) => ready,
        Err(e) => {
            tracing::error!(shard = shard.core.borrow().index, error = %e, "cannot poll the shard's epoll set; no connection is served");
            return;
        }
    };
    let mut reports = Vec::with_capacity(BATCH);
    let mut signalled = Vec::new();
    loop {
        // Every pass starts with a wait through the runtime, even while sockets are still
        // ready (the poll then completes at once): under io_uring monoio runs its timers and
        // takes the wakes of other threads (the inbox's) only when it parks, so a reactor
        // that went straight on while it had work would hold both back for as long as the
        // load lasted (a fan-out over two shards waited hundreds of milliseconds for its
        // inbox). The other tasks of the shard have their turn here too.
        monoio::select! {
            _ = ready.readable(false) => {}
            _ = Signalled => {}
        }
        reports.clear();
        reports.extend(shard.epoll.borrow_mut().ready());
        take_signals(&shard, &mut signalled);
        for r in &reports {
            on_ready(&shard, r);
        }
        // What the reads queued leaves now, each connection's frames in one write (or with
        // the next ones, for a connection written very recently: `pace`).
        shard.core.borrow_mut().flush_paced();
        // What the pass signalled (a socket found full, say) is handled before the wait,
        // which would otherwise end at once.
        take_signals(&shard, &mut signalled);
    }
}

/// Handles the signalled connections until none is left (handling one may signal another).
fn take_signals(shard: &Shard, signalled: &mut Vec<(u32, u64)>) {
    loop {
        SIGNALS.with(|s| std::mem::swap(&mut s.borrow_mut().conns, signalled));
        if signalled.is_empty() {
            return;
        }
        for &(key, id) in signalled.iter() {
            on_signal(shard, key as usize, id);
        }
        signalled.clear();
    }
}

/// Resolves when a connection is signalled.
struct Signalled;

impl Future for Signalled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        SIGNALS.with(|s| {
            let mut s = s.borrow_mut();
            if s.conns.is_empty() {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }
}

/// A socket is ready: write what waited for room, read what came.
fn on_ready(shard: &Shard, r: &sys::epoll::Ready) {
    if r.token == super::pace::TIMER {
        return shard.core.borrow_mut().flush_waiting();
    }
    let key = (r.token & u32::MAX as u64) as usize;
    let (tls, done) = {
        let mut core = shard.core.borrow_mut();
        let Some(conn) = core.conns.get_mut(key) else {
            return;
        };
        if token(key, conn.id) != r.token {
            return;
        }
        if r.writable && conn.write_blocked {
            conn.write_blocked = false;
            conn.flush();
            if !conn.write_blocked {
                watch_writes(shard, conn, false);
            }
        }
        (conn.tls.is_some(), conn.done)
    };
    if done {
        return finish(shard, key, Step::Exit);
    }
    if r.readable {
        let step = read(shard, key, tls);
        finish(shard, key, step);
    }
}

/// The shard signalled the connection: it ends, waits for room, or was vouched for.
fn on_signal(shard: &Shard, key: usize, id: u64) {
    let mut core = shard.core.borrow_mut();
    let Some(conn) = core.conns.get_mut(key) else {
        return;
    };
    if conn.id != id {
        return;
    }
    conn.signaled = false;
    if conn.done {
        drop(core);
        return finish(shard, key, Step::Exit);
    }
    if conn.write_blocked && !conn.watching_writes {
        watch_writes(shard, conn, true);
    }
    match core.resume_authenticated(key) {
        None => {}
        Some(step) => {
            core.flush_dirty();
            drop(core);
            finish(shard, key, step);
        }
    }
}

/// Starts or stops watching the connection's socket for room to write.
fn watch_writes(shard: &Shard, conn: &mut super::conn::Conn, watch: bool) {
    let interest = match watch {
        true => Interest::ReadWrite,
        false => Interest::Read,
    };
    let key = conn.key as usize;
    match shard
        .epoll
        .borrow()
        .modify(conn.fd(), token(key, conn.id), interest)
    {
        Ok(()) => conn.watching_writes = watch,
        Err(_) => {
            // The socket cannot be watched: it is of no more use.
            conn.done = true;
            conn.signal();
        }
    }
}

/// What happens to a connection after its input or signal was handled.
fn finish(shard: &Shard, key: usize, step: Step) {
    match step {
        // Done while its input was handled (our close was answered, say).
        Step::Continue if shard.core.borrow().conns.get(key).is_some_and(|c| c.done) => {
            finish(shard, key, Step::Exit)
        }
        Step::Continue => {}
        Step::Handoff(target, handoff) => {
            // The socket stays open on the other shard: it leaves this shard's set first.
            shard.epoll.borrow().remove(handoff.socket.as_raw_fd());
            let shared = shard.core.borrow().shared.clone();
            shared.send(target, ShardMsg::Adopt(handoff));
        }
        Step::Exit => {
            let mut core = shard.core.borrow_mut();
            if core.conns.contains(key) {
                // The socket closes with the record, and leaves the set by itself.
                core.remove(key);
            }
            // Leaving may have queued frames for others (presence `leave`).
            core.flush_dirty();
        }
    }
}

/// One read into the shard's buffer, handled at once (decrypted first, on TLS).
fn read(shard: &Shard, key: usize, tls: bool) -> Step {
    let mut buf = shard.readbuf.borrow_mut();
    let fd = shard.core.borrow().conns[key].fd();
    match sys::recv(fd, &mut buf) {
        Ok(0) => Step::Exit,
        Ok(n) if tls => {
            crate::metrics::local(|m| crate::metrics::bump(&m.bytes_in, n as u64));
            super::tls::input(shard, key, &buf[..n])
        }
        Ok(n) => {
            crate::metrics::local(|m| crate::metrics::bump(&m.bytes_in, n as u64));
            let mut core = shard.core.borrow_mut();
            let step = core.on_input(key, &mut buf[..n]);
            if !matches!(step, Step::Continue) {
                // This connection leaves the slab: write what it has now. Otherwise it is
                // corked: written at the end of the pass, with what the other reads queue.
                core.flush_dirty();
            }
            step
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) =>
        {
            Step::Continue
        }
        Err(_) => Step::Exit,
    }
}
