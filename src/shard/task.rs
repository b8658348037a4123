//! The one task a connection has: it waits for the socket to be readable (or writable, when
//! its queue is stuck), reads into the shard's buffer, and hands the bytes to the shard.
//! What the read queued is written by the shard's flusher at the end of the loop pass.
//! The task owns the socket; when it ends, the connection is forgotten and the socket closed.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use monoio::net::TcpStream;

use super::core::Step;
use super::Shard;
use crate::route::inbox::{Handoff, ShardMsg};
use crate::sys;

enum Wake {
    Readable(bool),
    Writable(bool),
    Signal,
}

pub async fn run(shard: Rc<Shard>, key: usize, stream: TcpStream) {
    let fd = stream.as_raw_fd();
    // A hand-off decided on a signal, while the wait for readability may still be held.
    let mut signalled = false;
    let step = loop {
        let (blocked, done) = {
            let core = shard.core.borrow();
            let conn = &core.conns[key];
            (conn.write_blocked, conn.done)
        };
        if done {
            break Step::Exit;
        }
        // The wait for writability is boxed: it is rare, and held inline it would take its
        // size in every idle connection's task.
        let wake = if blocked {
            monoio::select! {
                r = stream.readable(false) => Wake::Readable(r.is_ok()),
                r = Box::pin(stream.writable(false)) => Wake::Writable(r.is_ok()),
                _ = Signalled { shard: &shard, key } => Wake::Signal,
            }
        } else {
            monoio::select! {
                r = stream.readable(false) => Wake::Readable(r.is_ok()),
                _ = Signalled { shard: &shard, key } => Wake::Signal,
            }
        };
        match wake {
            Wake::Readable(true) => match read(&shard, key, fd) {
                Step::Continue => {}
                step => break step,
            },
            Wake::Writable(true) => {
                let mut core = shard.core.borrow_mut();
                let conn = &mut core.conns[key];
                conn.write_blocked = false;
                conn.flush();
            }
            Wake::Signal => {
                // The token store or the connect proxy vouched for the connection.
                let mut core = shard.core.borrow_mut();
                match core.resume_authenticated(key) {
                    None => {}
                    Some(Step::Continue) => core.flush_dirty(),
                    Some(step) => {
                        core.flush_dirty();
                        signalled = true;
                        break step;
                    }
                }
            }
            Wake::Readable(false) | Wake::Writable(false) => break Step::Exit,
        }
    };
    match step {
        Step::Handoff(target, detached) => {
            let shared = shard.core.borrow().shared.clone();
            let socket = if signalled {
                match sys::dup_std(&stream) {
                    Ok(socket) => socket,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot hand a connection off");
                        if detached.counted {
                            shared.uncount_connection(detached.peer.ip());
                        }
                        return;
                    }
                }
            } else {
                sys::into_std(stream)
            };
            shared.send(
                target,
                ShardMsg::Adopt(Box::new(Handoff { socket, detached })),
            );
        }
        _ => {
            let mut core = shard.core.borrow_mut();
            core.remove(key);
            // Leaving may have queued frames for others (presence `leave`).
            core.flush_dirty();
            drop(core);
            drop(stream);
        }
    }
}

/// One read into the shard's buffer, handled at once.
fn read(shard: &Shard, key: usize, fd: i32) -> Step {
    let mut buf = shard.readbuf.borrow_mut();
    match sys::recv(fd, &mut buf) {
        Ok(0) => Step::Exit,
        Ok(n) => {
            crate::metrics::local(|m| crate::metrics::bump(&m.bytes_in, n as u64));
            let mut core = shard.core.borrow_mut();
            let step = core.on_input(key, &mut buf[..n]);
            match step {
                // Corked: written with what the other reads of this pass queue.
                Step::Continue => core.flush_soon(),
                // This connection leaves the slab: write what it has now.
                _ => core.flush_dirty(),
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

/// Resolves when the shard signals the connection (its queue got stuck, or it must end).
struct Signalled<'a> {
    shard: &'a Shard,
    key: usize,
}

impl Future for Signalled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut core = self.shard.core.borrow_mut();
        if core.conns[self.key].poll_signal(cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
