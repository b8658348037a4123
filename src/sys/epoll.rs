//! One epoll set per shard: the readiness of every connection of the shard, read with one
//! `epoll_wait` per pass of its event loop (`shard::reactor`). Level-triggered: a socket
//! with input left is reported again on the next pass, and one that is full is watched for
//! writability only while its queue is stuck.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What a registered socket is watched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Input, end of stream, errors.
    Read,
    /// The same, and room to write.
    ReadWrite,
}

impl Interest {
    fn bits(self) -> u32 {
        let read = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        match self {
            Interest::Read => read,
            Interest::ReadWrite => read | libc::EPOLLOUT as u32,
        }
    }
}

/// One readiness report: the token the socket was registered with, and what it is ready for.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    pub token: u64,
    /// Input, end of stream or an error: a read will tell which.
    pub readable: bool,
    pub writable: bool,
}

pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A new set, reporting at most `batch` sockets per `wait`.
    pub fn new(batch: usize) -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag and no pointers.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; batch.max(1)],
        })
    }

    /// A second descriptor of the set, for the runtime to poll for readability (the set is
    /// readable while any socket in it is ready).
    pub fn try_clone(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    pub fn add(&self, socket: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, socket, token, interest)
    }

    pub fn modify(&self, socket: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, socket, token, interest)
    }

    /// Stops watching a socket that stays open (it moves to another shard). A closed socket
    /// leaves the set by itself.
    pub fn remove(&self, socket: RawFd) {
        let mut unused = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: the event is valid and writable (ignored by EPOLL_CTL_DEL on Linux ≥ 2.6.9).
        unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                socket,
                &mut unused,
            )
        };
    }

    fn ctl(&self, op: i32, socket: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest.bits(),
            u64: token,
        };
        // SAFETY: `event` is valid for the call; the kernel copies it.
        match unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, socket, &mut event) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// The sockets ready now, without waiting.
    pub fn ready(&mut self) -> impl Iterator<Item = Ready> + '_ {
        let capacity = self.events.len() as i32;
        // SAFETY: `events` holds `capacity` writable entries for the kernel to fill.
        let n =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), self.events.as_mut_ptr(), capacity, 0) };
        let n = n.max(0) as usize;
        self.events[..n].iter().map(|e| {
            let bits = e.events;
            let readable =
                (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
            Ready {
                token: e.u64,
                readable: bits & readable != 0,
                writable: bits & libc::EPOLLOUT as u32 != 0,
            }
        })
    }

    /// How many reports one `ready` gives at most.
    pub fn batch(&self) -> usize {
        self.events.len()
    }
}
