//! A one-shot timer the shard's epoll set watches (`timerfd`): the reactor's paced writes
//! (`shard::pace`) wait on it to the microsecond, where the runtime's timers tick in
//! milliseconds.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub struct Timer {
    fd: OwnedFd,
}

impl Timer {
    pub fn new() -> io::Result<Timer> {
        // SAFETY: timerfd_create takes a clock id and flags, no pointers.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(Timer {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Fires once, `after` from now (a zero `after` fires at once). Setting the timer also
    /// forgets an expiry not yet seen, so it is readable only once it fires again.
    pub fn set(&self, after: Duration) {
        let after = after.max(Duration::from_nanos(1));
        self.settime(libc::timespec {
            tv_sec: after.as_secs() as _,
            tv_nsec: after.subsec_nanos() as _,
        });
    }

    /// Disarms the timer and forgets an expiry not yet seen.
    pub fn clear(&self) {
        self.settime(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
    }

    fn settime(&self, value: libc::timespec) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: `spec` is valid for the call and the old value is not asked for (null).
        // It fails only on an invalid descriptor or value, which this type rules out.
        unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(t: &Timer) -> bool {
        let mut p = libc::pollfd {
            fd: t.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a zero timeout.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    #[test]
    fn fires_once_and_setting_it_again_forgets_the_expiry() {
        let t = Timer::new().unwrap();
        assert!(!readable(&t));
        t.set(Duration::from_micros(200));
        std::thread::sleep(Duration::from_millis(5));
        assert!(readable(&t), "the timer did not fire");
        t.set(Duration::from_secs(60));
        assert!(!readable(&t), "setting the timer kept the old expiry");
        t.clear();
        assert!(!readable(&t));
    }
}
