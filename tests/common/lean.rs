//! A lean asynchronous WebSocket client for the tests that hold many thousands of
//! connections in one process (a thread each would not do): raw TCP on tokio, the token in
//! the query, server frames parsed from one buffer per connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    Connect,
    Http(u16),
    Closed,
    Timeout,
    Unexpected,
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A server frame: opcode and payload.
pub struct Frame {
    pub opcode: u8,
    /// RSV1: compressed with permessage-deflate.
    pub rsv1: bool,
    pub payload: Vec<u8>,
}

/// Source address of connection `i`: 127.0.0.2..=127.0.0.17, past one address's
/// ephemeral ports.
pub fn source_ip(i: usize) -> IpAddr {
    IpAddr::from([127, 0, 0, 2 + (i % 16) as u8])
}

/// Connects from `src` with `token` in the query and waits for `welcome`, within `limit`.
pub async fn connect(
    addr: SocketAddr,
    src: IpAddr,
    token: &str,
    limit: Duration,
) -> Result<Conn, Failure> {
    Ok(connect_with(addr, src, token, "", limit).await?.0)
}

/// `connect`, with `headers` (each line ending in CRLF) added to the request; also returns
/// the response head. A `welcome` sent compressed is inflated to be checked.
pub async fn connect_with(
    addr: SocketAddr,
    src: IpAddr,
    token: &str,
    headers: &str,
    limit: Duration,
) -> Result<(Conn, String), Failure> {
    let attempt = async {
        let sock = TcpSocket::new_v4().map_err(|_| Failure::Connect)?;
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|_| Failure::Connect)?;
        let stream = sock.connect(addr).await.map_err(|_| Failure::Connect)?;
        stream.set_nodelay(true).ok();
        let mut conn = Conn {
            stream,
            buf: Vec::with_capacity(1024),
        };
        let req = format!(
            "GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        );
        conn.write_all(req.as_bytes()).await?;
        let end = loop {
            if let Some(p) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            conn.fill().await?;
        };
        let status = std::str::from_utf8(&conn.buf[..end])
            .ok()
            .and_then(|h| h.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status != 101 {
            return Err(Failure::Http(status));
        }
        let head = String::from_utf8_lossy(&conn.buf[..end]).into_owned();
        conn.buf.drain(..end);
        let welcome = conn.frame().await?;
        if welcome.opcode != 1 || welcome.json()["type"] != "welcome" {
            return Err(Failure::Unexpected);
        }
        Ok((conn, head))
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or(Err(Failure::Timeout))
}

impl Frame {
    /// The payload as JSON (`Null` when it is not), inflated first when compressed.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.inflated()).unwrap_or_default()
    }

    /// The payload, inflated when RSV1 says it is compressed (RFC 7692: raw DEFLATE, with
    /// the `00 00 ff ff` the sender stripped appended again).
    pub fn inflated(&self) -> Vec<u8> {
        if !self.rsv1 {
            return self.payload.clone();
        }
        let mut d = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(self.payload.len() * 8 + 64);
        let mut input = self.payload.clone();
        input.extend([0, 0, 0xff, 0xff]);
        loop {
            let before = d.total_in() as usize;
            d.decompress_vec(&input[before..], &mut out, flate2::FlushDecompress::Sync)
                .expect("a valid DEFLATE payload");
            if d.total_in() as usize == input.len() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(out.capacity());
        }
    }
}

impl Conn {
    async fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), Failure> {
        while !bytes.is_empty() {
            self.stream.writable().await.map_err(|_| Failure::Closed)?;
            match self.stream.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(Failure::Closed),
            }
        }
        Ok(())
    }

    /// Writes raw bytes (frames built by the test).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.write_all(bytes).await
    }

    /// Reads more into the buffer; `Closed` at the end of the stream.
    async fn fill(&mut self) -> Result<(), Failure> {
        let mut chunk = [0u8; 4096];
        loop {
            self.stream.readable().await.map_err(|_| Failure::Closed)?;
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return Err(Failure::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(Failure::Closed),
            }
        }
    }

    /// The next whole server frame (unmasked, as servers send them).
    pub async fn frame(&mut self) -> Result<Frame, Failure> {
        loop {
            if self.buf.len() >= 2 {
                let (len, head) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => {
                        let b: [u8; 8] = self.buf[2..10].try_into().unwrap();
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= head + len {
                    let opcode = self.buf[0] & 0x0f;
                    let rsv1 = self.buf[0] & 0x40 != 0;
                    let payload = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return Ok(Frame {
                        opcode,
                        rsv1,
                        payload,
                    });
                }
            }
            self.fill().await?;
        }
    }
}
