//! The connector for rpc backends: plain `http://`, or `https://` through rustls, trusting
//! the system's roots, or only the certificates of `rpc_ca_file` when it is set.

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::config::Config;

pub type Connector = HttpsConnector<HttpConnector>;

/// The connector, or why TLS cannot be set up (no usable roots, a bad CA file).
pub fn connector(config: &Config) -> Result<Connector, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let builder = HttpsConnectorBuilder::new();
    let builder = match &config.rpc_ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in crate::config::certificates(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("rpc_ca_file {}: {e}", path.display()))?;
            }
            let tls = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(tls)
        }
        None => match HttpsConnectorBuilder::new().with_native_roots() {
            Ok(native) => native,
            Err(e) => {
                // Plain http:// backends still work; https:// ones fail their handshakes.
                tracing::warn!(error = %e, "rpc: no system TLS roots; https backends need rpc_ca_file");
                let tls = rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                builder.with_tls_config(tls)
            }
        },
    };
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}
