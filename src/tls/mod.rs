//! TLS for the hub's own listeners (the client listener and the admin port): a certificate
//! and key read from PEM files, served through a resolver that every new handshake reads
//! once, so that a reload (files changed, or `SIGHUP`) changes what new handshakes present
//! without touching the connections already open.
//!
//! The crypto provider is `ring` (PERFORMANCE.md, "TLS": measured beside `aws-lc-rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub mod watch;

/// A certificate and key loaded from PEM files, reloadable. Shared by the listener's
/// `ServerConfig` (as its resolver) and by whatever reloads it.
#[derive(Debug)]
pub struct Certs {
    /// Which listener, for logs: `tls` or `admin_tls`.
    pub name: &'static str,
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last read, to tell a change.
    stamps: Mutex<Stamps>,
    /// Reloads that took a new certificate, and reloads refused (the old one kept).
    pub reloaded: AtomicU64,
    pub failed: AtomicU64,
}

type Stamps = (Option<SystemTime>, Option<SystemTime>);

impl Certs {
    /// Reads the files; the error says which file and what is wrong with it.
    pub fn load(name: &'static str, cert_path: &Path, key_path: &Path) -> Result<Certs, String> {
        let stamps = stamps(cert_path, key_path);
        let key = read(cert_path, key_path)?;
        Ok(Certs {
            name,
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
            stamps: Mutex::new(stamps),
            reloaded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Reads the files again. On an error the certificate in use stays, and the failure is
    /// counted; the caller logs it.
    pub fn reload(&self) -> Result<(), String> {
        let seen = stamps(&self.cert_path, &self.key_path);
        // Remembered before reading: a bad file is not retried on every poll, only once it
        // changes again (or on SIGHUP).
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = seen;
        match read(&self.cert_path, &self.key_path) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                self.reloaded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Have the files changed (their modification times) since they were last read?
    pub fn changed(&self) -> bool {
        let now = stamps(&self.cert_path, &self.key_path);
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// The certificate chain in use (its first certificate is the server's).
    pub fn chain(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        self.current().cert.clone()
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server side of TLS for one listener: TLS 1.3 and 1.2, ALPN `http/1.1` (the
/// WebSocket upgrade and the admin API are HTTP/1.1), the certificate from `certs`.
pub fn server_config(certs: Arc<Certs>) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_no_client_auth()
    .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No resumption: rustls's default session cache holds 256 sessions behind one lock for
    // the whole process, too few to help a hub of many clients, and a lock on every
    // handshake of every shard.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

fn stamps(cert: &Path, key: &Path) -> Stamps {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (mtime(cert), mtime(key))
}

/// The certificate chain and private key of two PEM files, checked to belong together.
fn read(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, String> {
    use rustls_pki_types::pem::PemObject;
    let chain = crate::config::certificates(cert_path)?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| format!("{} and {}: {e}", cert_path.display(), key_path.display()))
}
