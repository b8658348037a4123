//! A connection's state on its shard, and its outgoing queue.
//!
//! The queue holds shared frame buffers (`Bytes`), bounded in bytes by `send_queue_bytes`;
//! everything queued is written with vectored, non-blocking `sendmsg` calls of up to 64
//! frames, until the socket is full or the queue empty. When the socket is full, the shard's
//! reactor is signalled to watch the socket for writability.

use std::io::IoSlice;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

pub use self::tls::Decrypted;
use super::outq::FrameQueue;
use crate::auth::Identity;
use crate::metrics;
use crate::protocol::wire::Wire;
use crate::sys;
use crate::ws::decoder::Decoder;

/// Where a connection is in its life. An open connection's session is part of its phase:
/// code that acts for a user matches `Phase::Open` and has the session, or has nothing.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Reading the HTTP request head.
    Http,
    /// Upgraded; the first frame must be `auth`.
    AwaitAuth,
    /// Authenticated, on its user's shard.
    Open(Session),
    /// The testing echo endpoint.
    Echo,
    /// We sent a close frame or an HTTP answer; waiting for the peer to finish. The session
    /// stays until the connection is removed (its user, subscriptions and presence go then).
    Closing(Option<Session>),
}

/// `Phase` without its data, for comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Http,
    AwaitAuth,
    Open,
    Echo,
    Closing,
}

/// An authenticated connection: its user (shared with the shard's user table) and the
/// token it holds now (replaced by `refresh`).
#[derive(Debug, Clone)]
pub struct Session {
    pub user: Rc<str>,
    pub identity: Rc<Identity>,
}

impl Phase {
    pub fn stage(&self) -> Stage {
        match self {
            Phase::Http => Stage::Http,
            Phase::AwaitAuth => Stage::AwaitAuth,
            Phase::Open(_) => Stage::Open,
            Phase::Echo => Stage::Echo,
            Phase::Closing(_) => Stage::Closing,
        }
    }

    /// The session of an open connection.
    pub fn open(&self) -> Option<&Session> {
        match self {
            Phase::Open(s) => Some(s),
            _ => None,
        }
    }

    /// The session of a connection that was authenticated, open or closing since.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Phase::Open(s) | Phase::Closing(Some(s)) => Some(s),
            _ => None,
        }
    }

    /// Moves to `Closing`, keeping the session.
    pub fn close(&mut self) {
        let session = match std::mem::replace(self, Phase::Http) {
            Phase::Open(s) | Phase::Closing(Some(s)) => Some(s),
            _ => None,
        };
        *self = Phase::Closing(session);
    }
}

mod tls;

/// Most slices one `sendmsg` carries.
const MAX_IOV: usize = 64;
/// Most `sendmsg` calls one flush makes while the socket takes all it is given.
const MAX_WRITES: usize = 16;

pub struct Conn {
    /// Unique on this instance; also the generation that stale timers are checked against.
    pub id: u64,
    /// Its key in the shard's slab (for the reactor's signals).
    pub key: u32,
    /// The connection's socket, registered with the shard's epoll set (`shard::reactor`);
    /// closed when the record is dropped, unless it leaves for another shard first.
    pub socket: TcpStream,
    pub phase: Phase,
    pub peer: std::net::SocketAddr,
    pub accepted_at: Instant,
    pub client: Option<Box<str>>,
    /// Channels this connection is subscribed to.
    pub subs: Vec<std::sync::Arc<str>>,
    /// Partial HTTP request head (empty after the upgrade).
    pub head: Vec<u8>,
    pub decoder: Decoder,
    /// Counted against `max_connections`.
    pub counted: bool,
    /// Last time any frame arrived (liveness).
    pub last_seen: Instant,
    /// Consecutive malformed requests (1008 past a bound).
    pub malformed: u32,
    /// When it was last written, in the shard's microseconds (`pace::Pacer::now`).
    pub last_write: u32,
    /// `rpc` calls of this connection not yet answered.
    pub rpc_in_flight: u8,
    /// The stream broke the protocol: further input is ignored while closing.
    pub poisoned: bool,
    /// Waiting for the token store or the connect proxy: input is kept, not decoded.
    pub connecting: bool,
    /// The `id` of the `auth` request, echoed in `welcome`.
    pub request_id: Option<u64>,
    /// The close code we sent or received, for the log line.
    pub close_code: Option<u16>,
    /// Channels with history this connection is catching up on (usually empty).
    pub catching_up: Vec<(std::sync::Arc<str>, Catchup)>,
    /// The correlation id of the request that closed it, for the log line.
    pub cause: crate::route::inbox::Cause,
    /// What it speaks (`Sec-WebSocket-Protocol`): which variant of a frame it is sent.
    pub wire: Wire,
    out: FrameQueue,
    /// Bytes of `out[0]` already written.
    out_offset: usize,
    out_bytes: usize,
    /// Shut the write side down once `out` is empty.
    fin_after_flush: bool,
    /// Listed in the shard's dirty list, to be flushed at the end of the current batch (or
    /// waiting for its interval, `shard::pace`).
    pub dirty: bool,
    /// It sent something in this pass: what that queued (its replies) is not paced.
    pub answering: bool,
    /// The socket was full; the reactor watches it for writability.
    pub write_blocked: bool,
    /// The reactor watches the socket for writability (it does while `write_blocked`).
    pub watching_writes: bool,
    /// The connection must end (timeout, error); the reactor forgets it and its socket closes.
    pub done: bool,
    /// In the reactor's list of connections to look at again.
    pub signaled: bool,
    /// The TLS session of a connection to a TLS listener (boxed: rustls's state is large,
    /// and plaintext connections carry only the pointer).
    pub tls: Option<Box<rustls::ServerConnection>>,
}

/// Where a subscription on a channel with history stands while it catches up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catchup {
    /// Waiting for the owner shard's answer: live publications are dropped (the answer
    /// holds them).
    Pending,
    /// Answered up to this offset: live publications at or below it are duplicates.
    After(u64),
}

/// The outcome of queuing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Ok,
    /// The queue would exceed its bound: a slow consumer.
    Overflow,
}

impl Conn {
    pub fn new(
        id: u64,
        key: usize,
        socket: TcpStream,
        peer: std::net::SocketAddr,
        now: Instant,
    ) -> Conn {
        Conn {
            id,
            key: key as u32,
            socket,
            phase: Phase::Http,
            peer,
            accepted_at: now,
            client: None,
            subs: Vec::new(),
            head: Vec::new(),
            decoder: Decoder::default(),
            counted: false,
            last_seen: now,
            malformed: 0,
            last_write: 0,
            rpc_in_flight: 0,
            poisoned: false,
            connecting: false,
            request_id: None,
            close_code: None,
            cause: None,
            catching_up: Vec::new(),
            wire: Wire::JSON,
            out: FrameQueue::default(),
            out_offset: 0,
            out_bytes: 0,
            fin_after_flush: false,
            dirty: false,
            answering: false,
            write_blocked: false,
            watching_writes: false,
            done: false,
            signaled: false,
            tls: None,
        }
    }

    pub fn stage(&self) -> Stage {
        self.phase.stage()
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Queues a frame unless that would pass `limit` bytes.
    pub fn queue(&mut self, frame: Bytes, limit: usize) -> Queued {
        self.queue_tagged(frame, limit, 0)
    }

    /// Queues a frame that a newer one with the same non-zero `tag` may replace
    /// (`conflate`).
    pub fn queue_tagged(&mut self, frame: Bytes, limit: usize, tag: u64) -> Queued {
        if self.out_bytes + frame.len() > limit {
            return Queued::Overflow;
        }
        self.out_bytes += frame.len();
        let is_frame = self.stage() != Stage::Http;
        metrics::local(|m| {
            metrics::bump(&m.frames_out, is_frame as u64);
            metrics::bump(&m.bytes_queued, frame.len() as u64);
        });
        self.out.push_back_tagged(frame, tag);
        Queued::Ok
    }

    /// Drops the queued frames with `tag` (the older publications of a conflating
    /// channel); how many there were.
    pub fn conflate(&mut self, tag: u64) -> usize {
        let (frames, bytes) = self.out.remove_tagged(tag);
        self.out_bytes -= bytes;
        metrics::local(|m| {
            metrics::bump(&m.bytes_discarded, bytes as u64);
            metrics::bump(&m.conflated, frames as u64);
        });
        frames
    }

    /// Drops everything queued (before a slow consumer's close frame), except the rest of
    /// a frame already partly written: cutting it would corrupt the stream.
    pub fn discard_queue(&mut self) {
        let before = self.out_bytes;
        let partial = (self.out_offset > 0)
            .then(|| self.out.pop_front())
            .flatten();
        self.out.clear();
        self.out_bytes = 0;
        if let Some(front) = partial {
            self.out_bytes = front.len() - self.out_offset;
            self.out.push_back(front);
        } else {
            self.out_offset = 0;
        }
        let dropped = (before - self.out_bytes) as u64;
        metrics::local(|m| metrics::bump(&m.bytes_discarded, dropped));
    }

    /// Everything queued and not yet written, to go with the connection to another shard.
    /// A frame already partly written is finished here first; None when that is not
    /// possible (the peer is not reading).
    pub fn take_unsent(&mut self) -> Option<Vec<Bytes>> {
        if self.out_offset > 0 {
            self.flush();
            if self.has_output() {
                return None;
            }
        }
        let mut frames = Vec::new();
        while let Some(frame) = self.out.pop_front() {
            frames.push(frame);
        }
        self.out_bytes = 0;
        Some(frames)
    }

    /// Queues frames taken with `take_unsent` on another shard, which counted them already.
    pub fn restore_unsent(&mut self, frames: Vec<Bytes>) {
        for frame in frames {
            self.out_bytes += frame.len();
            self.out.push_back(frame);
        }
    }

    pub fn queued_bytes(&self) -> usize {
        self.out_bytes
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Half-closes the socket once everything queued is written.
    pub fn finish_after_flush(&mut self) {
        self.fin_after_flush = true;
        if self.out.is_empty() {
            self.shutdown_write();
        }
    }

    fn shutdown_write(&mut self) {
        if self.tls.is_some() {
            // After close_notify, written by the TLS flush.
            return self.flush_tls();
        }
        self.fin_after_flush = false;
        sys::shutdown(self.fd(), std::net::Shutdown::Write);
    }

    /// Vectored writes of what is queued, 64 frames at a time. On a full socket, signals the
    /// reactor to watch for writability; on an error, marks the connection done.
    pub fn flush(&mut self) {
        if self.write_blocked || self.done {
            return;
        }
        if self.tls.is_some() {
            return self.flush_tls();
        }
        if self.out.is_empty() {
            return;
        }
        // More than MAX_IOV frames queued (a backlog after the socket was full): write on
        // while the socket takes everything, instead of waiting for a writability that is
        // already there (a poll armed and a wakeup per 64 frames).
        for _ in 0..MAX_WRITES {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            let mut len = 0;
            for (i, b) in self.out.iter().take(MAX_IOV).enumerate() {
                iov[i] = IoSlice::new(if i == 0 { &b[self.out_offset..] } else { b });
                len += iov[i].len();
                n += 1;
            }
            match sys::send_vectored(self.fd(), &iov[..n]) {
                Ok(written) => {
                    self.consume(written);
                    if written < len || self.out.is_empty() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    self.signal();
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                Err(_) => {
                    self.discard_queue();
                    self.done = true;
                    self.signal();
                    break;
                }
            }
        }
        if self.out.is_empty() {
            if self.fin_after_flush {
                self.shutdown_write();
            }
        } else if !self.write_blocked {
            // A short write means the socket is full: wait for room instead of retrying.
            self.write_blocked = true;
            self.signal();
        }
    }

    fn consume(&mut self, mut written: usize) {
        self.out_bytes -= written;
        metrics::local(|m| metrics::bump(&m.bytes_out, written as u64));
        while written > 0 {
            let front =
                self.out.front().expect("wrote more than was queued").len() - self.out_offset;
            if written >= front {
                written -= front;
                self.out.pop_front();
                self.out_offset = 0;
            } else {
                self.out_offset += written;
                written = 0;
            }
        }
    }

    /// Asks the shard's reactor to look at the connection again (it is done, its socket is
    /// full, or the token store or connect proxy vouched for it).
    pub fn signal(&mut self) {
        if !std::mem::replace(&mut self.signaled, true) {
            super::reactor::signal(self.key, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    /// What one connection's record costs in the shard's slab (issue 18's accounting of an
    /// idle connection's memory; PERFORMANCE.md).
    #[test]
    fn size_of_a_connection() {
        let conn = std::mem::size_of::<super::Conn>();
        println!("size_of::<Conn>() = {conn} B");
        assert!(conn <= 512, "a connection's record grew past 512 B: {conn}");
    }
}
