//! A lean WebSocket client for load: raw TCP, frames built once and written as they are,
//! server frames parsed in place without allocating per message.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use ringhub::ws::frame::client_frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// Over TLS (`--tls-ca`): the session, between the socket and `buf`.
    tls: Option<Box<crate::tls::Tls>>,
}

/// Headers every upgrade request carries besides the usual ones (`--extensions`).
pub static EXTRA_HEADERS: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// How a connection attempt failed, for the failure table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    Connect,
    Http(u16),
    Closed,
    Timeout,
}

/// Source address of connection `i`: round-robin over 127.0.0.2..=127.0.0.17, to go past
/// one address's ephemeral ports (and the TIME_WAIT left by earlier runs).
pub fn source_ip(i: usize) -> IpAddr {
    IpAddr::from([127, 0, 0, 2 + (i % 16) as u8])
}

/// How long a connection took to open, as a client sees it.
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    /// From the first system call to the bench seeing the TCP connection established. On
    /// loopback the handshake itself finishes inside `connect`, so this is mostly the wait
    /// for the bench's own turn: its share of a storm's queueing.
    pub established: Duration,
    /// From the first system call to `welcome`.
    pub welcome: Duration,
}

/// Connects with a token in the query and waits for `welcome`; returns the time it took.
/// `subprotocol`: offered in `Sec-WebSocket-Protocol` (`ringhub.v1.proto`: binary frames).
pub async fn connect(
    addr: SocketAddr,
    src: IpAddr,
    token: &str,
    timeout: Duration,
    subprotocol: Option<&str>,
) -> Result<(Conn, Opening), Failure> {
    let offer = subprotocol.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    let started = Instant::now();
    let fut = async {
        let sock = TcpSocket::new_v4().map_err(|_| Failure::Connect)?;
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|_| Failure::Connect)?;
        let mut stream = sock.connect(addr).await.map_err(|_| Failure::Connect)?;
        let established = started.elapsed();
        stream.set_nodelay(true).ok();
        let tls = match crate::tls::CONFIG.get() {
            None => None,
            Some(_) => Some(
                crate::tls::Tls::handshake(&mut stream)
                    .await
                    .ok_or(Failure::Closed)?,
            ),
        };
        let extra = EXTRA_HEADERS.get().map_or("", String::as_str);
        let req = format!(
            "GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}{offer}\r\n"
        );
        let mut conn = Conn {
            stream,
            buf: BytesMut::with_capacity(4096),
            tls,
        };
        if !conn.send(req.as_bytes()).await {
            return Err(Failure::Closed);
        }
        let end = loop {
            if let Some(p) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if conn.fill().await == 0 {
                return Err(Failure::Closed);
            }
        };
        let status: u16 = std::str::from_utf8(&conn.buf[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status != 101 {
            return Err(Failure::Http(status));
        }
        conn.buf.advance(end);
        let (op, payload) = conn.next_frame().await.ok_or(Failure::Closed)?;
        // A proto welcome is a binary HubFrame (field 10, `welcome`: tag byte 0x52).
        let welcome = match op {
            1 => payload.starts_with(b"{\"type\":\"welcome\""),
            2 => payload.first() == Some(&0x52),
            _ => false,
        };
        if !welcome {
            return Err(Failure::Closed);
        }
        Ok((conn, established))
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok((conn, established))) => Ok((
            conn,
            Opening {
                established,
                welcome: started.elapsed(),
            },
        )),
        Ok(Err(f)) => Err(f),
        Err(_) => Err(Failure::Timeout),
    }
}

/// A fixed mask: the hub must unmask it all the same.
const MASK: Option<[u8; 4]> = Some([0x12, 0x34, 0x56, 0x78]);

/// A masked client text frame.
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    client_frame(true, 0x1, payload, MASK)
}

/// A masked client binary frame.
pub fn binary_frame(payload: &[u8]) -> Vec<u8> {
    client_frame(true, 0x2, payload, MASK)
}

impl Conn {
    async fn fill(&mut self) -> usize {
        self.make_room();
        let Some(tls) = self.tls.as_mut() else {
            return self.stream.read_buf(&mut self.buf).await.unwrap_or(0);
        };
        loop {
            if self.stream.read_buf(&mut tls.cipher).await.unwrap_or(0) == 0 {
                return 0;
            }
            match tls.decrypt(&mut self.buf) {
                Ok(0) => continue,
                Ok(n) => return n,
                Err(_) => return 0,
            }
        }
    }

    /// At least 4 KiB free at the end of the buffer for the next read.
    fn make_room(&mut self) {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
    }

    /// The next frame's opcode and payload, answering pings on the way; None when closed.
    pub async fn next_frame(&mut self) -> Option<(u8, BytesMut)> {
        self.next_frame_counting_pings(&AtomicU64::new(0)).await
    }

    /// As `next_frame`, counting the pings answered.
    pub async fn next_frame_counting_pings(&mut self, pings: &AtomicU64) -> Option<(u8, BytesMut)> {
        loop {
            if let Some((op, head, len)) = parse(&self.buf) {
                let mut frame = self.buf.split_to(head + len);
                frame.advance(head);
                if op == 9 {
                    pings.fetch_add(1, Ordering::Relaxed);
                    let pong = client_frame(true, 0xA, &frame, MASK);
                    let _ = self.send(&pong).await;
                    continue;
                }
                return Some((op, frame));
            }
            if self.fill().await == 0 {
                return None;
            }
        }
    }

    /// Hands every complete frame already read to `f` (opcode, payload) in place, without
    /// waiting or copying, then drops them from the buffer; pings are answered after.
    /// False when the connection closed.
    pub async fn drain_frames(&mut self, mut f: impl FnMut(u8, &[u8])) -> bool {
        let mut at = 0;
        let mut pongs = Vec::new();
        while let Some((op, head, len)) = parse(&self.buf[at..]) {
            let payload = &self.buf[at + head..at + head + len];
            if op == 9 {
                pongs.extend_from_slice(&client_frame(true, 0xA, payload, MASK));
            } else {
                f(op, payload);
            }
            at += head + len;
        }
        self.buf.advance(at);
        pongs.is_empty() || self.send(&pongs).await
    }

    /// Has the kernel stamp each segment this connection receives with its arrival time
    /// (`SO_TIMESTAMPNS`), for [`Conn::fill_stamped`].
    pub fn stamp_arrivals(&self) -> std::io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option of the size given.
        let rc = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Reads more (0 when closed), and when the newest segment read arrived at this socket,
    /// by the kernel's stamp (µs since the epoch; None without one). Frames that arrived
    /// earlier in the same read are given that time too: never earlier than true.
    pub async fn fill_stamped(&mut self) -> (usize, Option<u64>) {
        loop {
            self.make_room();
            let _ = self.stream.readable().await;
            let fd = self.stream.as_raw_fd();
            let buf = match self.tls.as_mut() {
                Some(tls) => {
                    tls.cipher.reserve(16 * 1024);
                    &mut tls.cipher
                }
                None => &mut self.buf,
            };
            match self
                .stream
                .try_io(tokio::io::Interest::READABLE, || recv_stamped(fd, buf))
            {
                Ok((0, _)) => return (0, None),
                Ok((n, stamp)) => match self.tls.as_mut() {
                    None => return (n, stamp),
                    Some(tls) => match tls.decrypt(&mut self.buf) {
                        Ok(0) => continue,
                        Ok(n) => return (n, stamp),
                        Err(_) => return (0, None),
                    },
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return (0, None),
            }
        }
    }

    pub async fn send(&mut self, frame: &[u8]) -> bool {
        match self.tls.as_mut() {
            None => self.stream.write_all(frame).await.is_ok(),
            Some(tls) => tls.write_all(&mut self.stream, frame).await.is_ok(),
        }
    }
}

/// One `recvmsg` into the spare capacity of `buf`, with the arrival stamp from its control
/// message.
fn recv_stamped(fd: RawFd, buf: &mut BytesMut) -> std::io::Result<(usize, Option<u64>)> {
    let spare = buf.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: fd is an open socket; iov points at `spare`, writable for its length.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel initialised the first n bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n as usize) };
    let mut stamp = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                stamp = Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp))
}

fn parse(b: &[u8]) -> Option<(u8, usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    let (len, head) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (b.len() >= head + len).then_some((b[0] & 0x0f, head, len))
}

/// The number after `"key":` in a JSON payload, without parsing the rest.
pub fn field_u64(payload: &[u8], key: &[u8]) -> Option<u64> {
    let at = payload.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()
}
