//! A TLS connection's side of [`Conn`]: its rustls session decrypts what the socket brought
//! and encrypts what is queued, at flush. The queue still holds the shared frame buffers
//! (`Bytes`) every recipient of a publication holds: only the encryption is done per
//! connection, from those buffers straight into rustls's records (a vectored write, so
//! several small frames share one record).

use std::io::{IoSlice, Read, Write};

use super::{Conn, MAX_IOV, MAX_WRITES};
use crate::metrics;
use crate::sys;

/// What [`Conn::decrypt`] got from the input.
pub enum Decrypted {
    /// Plaintext, at the start of the buffer given.
    Plain(usize),
    /// All input taken, no plaintext yet (a handshake under way, a partial record).
    Nothing,
    /// The peer closed the session (close_notify), or broke TLS (an alert is queued).
    Closed,
}

/// The socket as rustls's `io::Write`: non-blocking `sendmsg`.
struct Socket(std::os::fd::RawFd);

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sys::send_vectored(self.0, &[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        sys::send_vectored(self.0, bufs)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Conn {
    /// Feeds `input` (ciphertext, consumed from the front) to the session as far as it
    /// takes it, and returns the plaintext it then holds, copied into `plain`.
    pub fn decrypt(&mut self, input: &mut &[u8], plain: &mut [u8]) -> Decrypted {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Decrypted::Closed;
        };
        if let Err(closed) = absorb(tls, input) {
            return closed;
        }
        match tls.reader().read(plain) {
            Ok(0) => Decrypted::Closed,
            Ok(n) => Decrypted::Plain(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Decrypted::Nothing,
            Err(_) => Decrypted::Closed,
        }
    }

    /// Does the session hold records to write (a handshake flight, an alert)?
    pub fn tls_wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// `flush` for a TLS connection: what rustls holds is written first, then queued frames
    /// are encrypted (up to rustls's buffer limit, 64 KiB) and written, until the socket is
    /// full or nothing is left.
    pub(super) fn flush_tls(&mut self) {
        let Some(mut tls) = self.tls.take() else {
            return;
        };
        'writes: for _ in 0..MAX_WRITES {
            while tls.wants_write() {
                match tls.write_tls(&mut Socket(self.fd())) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                        ) =>
                    {
                        break 'writes;
                    }
                    Err(_) => {
                        self.discard_queue();
                        self.done = true;
                        self.signal();
                        self.tls = Some(tls);
                        return;
                    }
                }
            }
            if self.out.is_empty() {
                break;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (i, b) in self.out.iter().take(MAX_IOV).enumerate() {
                iov[i] = IoSlice::new(if i == 0 { &b[self.out_offset..] } else { b });
                n += 1;
            }
            match tls.writer().write_vectored(&iov[..n]) {
                Ok(0) => break,
                Ok(taken) => self.consume(taken),
                Err(_) => {
                    self.discard_queue();
                    self.done = true;
                    self.signal();
                    break;
                }
            }
        }
        let idle = self.out.is_empty() && !tls.wants_write();
        if idle && self.fin_after_flush {
            // Tell the peer the session ends (close_notify) before the TCP half-close.
            self.fin_after_flush = false;
            tls.send_close_notify();
            let _ = tls.write_tls(&mut Socket(self.fd()));
            sys::shutdown(self.fd(), std::net::Shutdown::Write);
        } else if !idle && !self.done && !self.write_blocked {
            self.write_blocked = true;
            self.signal();
        }
        self.tls = Some(tls);
    }
}

/// Gives `input` to the session, record by record, until all is taken or its plaintext
/// buffer is full (the caller reads plaintext out, then gives the rest).
pub fn absorb(tls: &mut rustls::ServerConnection, input: &mut &[u8]) -> Result<(), Decrypted> {
    while !input.is_empty() {
        match tls.read_tls(input) {
            Ok(0) => break,
            Ok(_) => {}
            // The plaintext buffer is full: the caller reads it out first.
            Err(_) => break,
        }
        if tls.process_new_packets().is_err() {
            metrics::local(|m| metrics::bump(&m.tls_errors, 1));
            return Err(Decrypted::Closed);
        }
    }
    Ok(())
}
