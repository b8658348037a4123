//! TLS at start: the certificates loaded (a bad one fails the start with the file named),
//! the TLS listeners bound beside the plaintext ones (or in their place), and the reload of
//! the certificates wired to the file watcher and to `SIGHUP`.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use super::{bind_all, reload::Reloads, StartError};
use crate::config::{Config, ConfigError};
use crate::shard;
use crate::shared::Shared;
use crate::tls::{self, Certs};

/// The certificates of the client listener and of the admin port, where configured.
pub(super) struct Listeners {
    client: Option<Arc<Certs>>,
    admin: Option<Arc<Certs>>,
}

fn load(
    key: &str,
    name: &'static str,
    cert: &Option<std::path::PathBuf>,
    private: &Option<std::path::PathBuf>,
) -> Result<Option<Arc<Certs>>, StartError> {
    let (Some(cert), Some(private)) = (cert, private) else {
        return Ok(None);
    };
    Certs::load(name, cert, private)
        .map(|c| Some(Arc::new(c)))
        .map_err(|message| {
            StartError::Config(ConfigError::Value {
                key: key.into(),
                message,
            })
        })
}

impl Listeners {
    pub(super) fn load(config: &Config) -> Result<Listeners, StartError> {
        Ok(Listeners {
            client: load("tls_cert", "tls", &config.tls_cert, &config.tls_key)?,
            admin: load(
                "admin_tls_cert",
                "admin_tls",
                &config.admin_tls_cert,
                &config.admin_tls_key,
            )?,
        })
    }

    /// Each shard's listeners, and the TLS address: `tls_listen` bound beside `listen`, or
    /// `listen` serving TLS itself when there is a certificate but no `tls_listen`.
    pub(super) fn bind(
        &self,
        config: &Config,
        plain: Vec<TcpListener>,
        listen: SocketAddr,
    ) -> Result<(Vec<shard::Listeners>, Option<SocketAddr>), StartError> {
        let Some(certs) = &self.client else {
            let each = plain.into_iter().map(|l| shard::Listeners {
                plain: Some(l),
                tls: None,
            });
            return Ok((each.collect(), None));
        };
        let server = tls::server_config(certs.clone());
        let Some(addr) = config.tls_listen else {
            let each = plain.into_iter().map(|l| shard::Listeners {
                plain: None,
                tls: Some((l, server.clone())),
            });
            return Ok((each.collect(), Some(listen)));
        };
        let secure = bind_all(addr, plain.len(), config.listen_backlog)?;
        let tls_addr = secure[0]
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let each = plain
            .into_iter()
            .zip(secure)
            .map(|(p, s)| shard::Listeners {
                plain: Some(p),
                tls: Some((s, server.clone())),
            });
        Ok((each.collect(), Some(tls_addr)))
    }

    /// The admin port's TLS configuration (None: plaintext).
    pub(super) fn admin_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.admin.clone().map(tls::server_config)
    }

    /// Counts the certificates' reloads in the metrics, reloads them on `SIGHUP`, and
    /// starts the thread that reloads them when their files change.
    pub(super) fn watch(&self, shared: &Shared, reloads: &Reloads) -> Option<tls::watch::Watcher> {
        let certs: Vec<Arc<Certs>> = self.client.iter().chain(&self.admin).cloned().collect();
        if certs.is_empty() {
            return None;
        }
        let _ = shared.metrics.tls.set(certs.clone());
        let on_sighup = certs.clone();
        reloads.register("tls certificates", move || {
            tls::watch::reload_all(&on_sighup)
        });
        match tls::watch::spawn(certs, shared.config.tls_reload_interval) {
            Ok(watcher) => watcher,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the certificate watcher; only SIGHUP reloads");
                None
            }
        }
    }
}
