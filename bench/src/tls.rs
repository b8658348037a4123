//! `wss://` for the bench (`--tls-ca`): a rustls client session per connection, driven by
//! hand over the connection's own TCP socket, so that the reads stay the bench's own
//! (`recvmsg` with the kernel's arrival stamps): ciphertext read goes through the session,
//! and the plaintext that comes out is what the frame parser sees.

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The client configuration, when the hub is reached over TLS.
pub static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Trusts only the certificates of `ca` (PEM) and offers ALPN `http/1.1`.
pub fn configure(ca: &std::path::Path) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let _ = CONFIG.set(Arc::new(config));
    Ok(())
}

pub struct Tls {
    session: rustls::ClientConnection,
    /// Ciphertext read and not yet given to the session.
    pub cipher: BytesMut,
    out: Vec<u8>,
}

impl Tls {
    /// The handshake with the hub (as `localhost`), over `stream`; None when it fails.
    pub async fn handshake(stream: &mut TcpStream) -> Option<Box<Tls>> {
        let config = CONFIG.get()?.clone();
        let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
        let mut tls = Box::new(Tls {
            session: rustls::ClientConnection::new(config, name).ok()?,
            cipher: BytesMut::with_capacity(8192),
            out: Vec::new(),
        });
        while tls.session.is_handshaking() {
            tls.write_pending(stream).await.ok()?;
            if tls.session.is_handshaking() && tls.session.wants_read() {
                if stream.read_buf(&mut tls.cipher).await.ok()? == 0 {
                    return None;
                }
                let mut plain = BytesMut::new();
                tls.decrypt(&mut plain).ok()?;
            }
        }
        tls.write_pending(stream).await.ok()?;
        Some(tls)
    }

    /// Gives the ciphertext read to the session; appends the plaintext to `plain`.
    pub fn decrypt(&mut self, plain: &mut BytesMut) -> std::io::Result<usize> {
        let mut got = 0;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let mut rd = &self.cipher[..];
            let before = rd.len();
            if before > 0 {
                self.session.read_tls(&mut rd)?;
            }
            let taken = before - rd.len();
            self.cipher.advance(taken);
            self.session
                .process_new_packets()
                .map_err(std::io::Error::other)?;
            loop {
                match self.session.reader().read(&mut chunk) {
                    Ok(0) => return Ok(got),
                    Ok(n) => {
                        plain.extend_from_slice(&chunk[..n]);
                        got += n;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if taken == 0 || self.cipher.is_empty() {
                return Ok(got);
            }
        }
    }

    /// Encrypts `bytes` and writes them.
    pub async fn write_all(&mut self, stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
        self.session.writer().write_all(bytes)?;
        self.write_pending(stream).await
    }

    async fn write_pending(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        self.out.clear();
        while self.session.wants_write() {
            self.session.write_tls(&mut self.out)?;
        }
        stream.write_all(&self.out).await
    }
}
