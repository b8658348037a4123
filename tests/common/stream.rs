//! The tests' TCP stream: a `TcpStream` whose reads and writes start again when a signal
//! interrupts them. A socket with a read timeout (`SO_RCVTIMEO`) fails with `EINTR` after
//! any signal, even one the process ignores by default, such as the `SIGSTOP`/`SIGCONT` a
//! shared machine's scheduler or debugger may send (signal(7)); tungstenite passes that
//! error up rather than reading again, and a test would fail for nothing the hub did.

use std::io::{ErrorKind, Read, Result, Write};
use std::net::TcpStream;
use std::ops::Deref;

pub struct Tcp(pub TcpStream);

/// Runs `op` until it ends otherwise than interrupted.
fn again<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            done => return done,
        }
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        again(|| self.0.read(buf))
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> Result<usize> {
        again(|| self.0.write(buf))
    }

    fn flush(&mut self) -> Result<()> {
        again(|| self.0.flush())
    }
}

/// `set_read_timeout`, `peer_addr` and the rest, as on the `TcpStream`.
impl Deref for Tcp {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.0
    }
}
