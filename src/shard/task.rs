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

/// `backlog`: ciphertext a TLS connection brought from another shard, handled first.
pub async fn run(shard: Rc<Shard>, key: usize, stream: TcpStream, backlog: Vec<u8>) {
    let fd = stream.as_raw_fd();
    let tls = shard.core.borrow().conns[key].tls.is_some();
    let first = match tls {
        true => super::tls::input(&shard, key, &backlog),
        false => Step::Continue,
    };
    drop(backlog);
    let (step, signalled) = 'conn: {
        if !matches!(first, Step::Continue) {
            break 'conn (first, false);
        }
        serve(&shard, key, &stream, fd, tls).await
    };
    end(shard, key, stream, step, signalled);
}

/// The connection's life on this shard: wait, read or write, until it ends or moves; and
/// whether a hand-off was decided on a signal, while the wait for readability may still
/// hold the stream.
async fn serve(
    shard: &Rc<Shard>,
    key: usize,
    stream: &TcpStream,
    fd: i32,
    tls: bool,
) -> (Step, bool) {
    loop {
        let (blocked, done) = {
            let core = shard.core.borrow();
            let conn = &core.conns[key];
            (conn.write_blocked, conn.done)
        };
        if done {
            break (Step::Exit, false);
        }
        // The wait for writability is boxed: it is rare, and held inline it would take its
        // size in every idle connection's task.
        let wake = if blocked {
            monoio::select! {
                r = stream.readable(false) => Wake::Readable(r.is_ok()),
                r = Box::pin(stream.writable(false)) => Wake::Writable(r.is_ok()),
                _ = Signalled { shard, key } => Wake::Signal,
            }
        } else {
            monoio::select! {
                r = stream.readable(false) => Wake::Readable(r.is_ok()),
                _ = Signalled { shard, key } => Wake::Signal,
            }
        };
        match wake {
            Wake::Readable(true) => match read(shard, key, fd, tls) {
                Step::Continue => {}
                step => break (step, false),
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
                        break (step, true);
                    }
                }
            }
            Wake::Readable(false) | Wake::Writable(false) => break (Step::Exit, false),
        }
    }
}

/// What happens after a connection's task ends: it moves to another shard, or it is gone.
fn end(shard: Rc<Shard>, key: usize, stream: TcpStream, step: Step, signalled: bool) {
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
                ShardMsg::Adopt(Box::new(Handoff {
                    socket,
                    detached: *detached,
                })),
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

/// One read into the shard's buffer, handled at once (decrypted first, on TLS).
fn read(shard: &Shard, key: usize, fd: i32, tls: bool) -> Step {
    let mut buf = shard.readbuf.borrow_mut();
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
