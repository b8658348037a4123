//! What serde cannot check: ranges, files, combinations, digests.

use super::{value_err, Config, ConfigError};

impl Config {
    /// Checks what serde cannot: ranges, files, combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("ping_interval", self.ping_interval),
            ("pong_timeout", self.pong_timeout),
            ("auth_timeout", self.auth_timeout),
            ("close_timeout", self.close_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("rpc_timeout", self.rpc_timeout),
            ("connect_proxy_timeout", self.connect_proxy_timeout),
        ];
        for (key, d) in positive {
            if d.is_zero() {
                return Err(value_err(key, "must be greater than zero"));
            }
        }
        for digest in &self.api_keys {
            if <[u8; 32] as hex::FromHex>::from_hex(digest).is_err() {
                return Err(value_err(
                    "api_keys",
                    "expected SHA-256 digests: 64 hex characters each",
                ));
            }
        }
        if self.api_keys_file.is_some() {
            self.load_api_keys()
                .map_err(|e| value_err("api_keys_file", e))?;
        }
        if !self.redis_cluster.is_empty() {
            if self.redis_url.is_some() {
                return Err(value_err(
                    "redis_cluster",
                    "set redis_url or redis_cluster, not both",
                ));
            }
            if self.redis_prefix.contains(['{', '}']) {
                return Err(value_err(
                    "redis_prefix",
                    "must not contain { or } with redis_cluster (they make the hash tags)",
                ));
            }
        }
        if self.shards > 64 {
            return Err(value_err("shards", "at most 64 shards are supported"));
        }
        if self.max_message_size < 128 {
            return Err(value_err("max_message_size", "must be at least 128 bytes"));
        }
        if self.send_queue_bytes < self.max_message_size.min(65536) {
            return Err(value_err(
                "send_queue_bytes",
                "must hold at least one message",
            ));
        }
        if self.write_interval > std::time::Duration::from_secs(1) {
            return Err(value_err("write_interval", "must be at most 1s"));
        }
        if !(1..=9).contains(&self.compression_level) {
            return Err(value_err("compression_level", "must be 1 to 9"));
        }
        if self.listen_backlog == 0 {
            return Err(value_err("listen_backlog", "must be greater than zero"));
        }
        for path in [&self.jwt_public_key, &self.jwks_file]
            .into_iter()
            .flatten()
        {
            if !path.is_file() {
                return Err(value_err(
                    "jwt key",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        self.validate_tls()?;
        if let Some(path) = &self.rpc_ca_file {
            super::certificates(path).map_err(|e| value_err("rpc_ca_file", e))?;
        }
        if !(0.0..=1.0).contains(&self.rpc_breaker_failure_ratio) {
            return Err(value_err(
                "rpc_breaker_failure_ratio",
                "must be within 0..1",
            ));
        }
        if self.rpc_breaker_window == 0 || self.rpc_breaker_min_calls > self.rpc_breaker_window {
            return Err(value_err(
                "rpc_breaker_window",
                "must be at least 1 and at least rpc_breaker_min_calls",
            ));
        }
        if self.rpc_breaker_half_open_calls == 0 {
            return Err(value_err(
                "rpc_breaker_half_open_calls",
                "must be at least 1",
            ));
        }
        if self.rpc_secret.as_deref() == Some("") {
            return Err(value_err("rpc_secret", "must not be empty when set"));
        }
        if self.rpc_max_in_flight == 0 {
            return Err(value_err("rpc_max_in_flight", "must be greater than zero"));
        }
        if !(0.0..=1.0).contains(&self.trace_sample_ratio) {
            return Err(value_err("trace_sample_ratio", "must be within 0..1"));
        }
        if let Some(url) = &self.otlp_endpoint {
            match url.parse::<hyper::Uri>() {
                Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                }
                _ => {
                    return Err(value_err(
                        "otlp_endpoint",
                        "expected an http:// or https:// URL",
                    ))
                }
            }
        }
        self.validate_webhooks()?;
        if self.connect_proxy_always && self.connect_proxy_url.is_none() {
            return Err(value_err("connect_proxy_always", "needs connect_proxy_url"));
        }
        if self.token_store.is_some() && self.redis_url.is_none() {
            return Err(value_err("token_store", "\"redis\" needs redis_url"));
        }
        if self.connect_proxy_headers.iter().any(|h| {
            h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) {
            return Err(value_err("connect_proxy_headers", "expected header names"));
        }
        crate::config::Routes::new(self)
            .map_err(|e| value_err("rpc_url / rpc_methods / *_proxy_url", e))?;
        for (name, ns) in &self.namespaces {
            if ns.subscribe_proxy && self.subscribe_proxy_url.is_none() {
                let key = format!("namespaces.{name}.subscribe_proxy");
                return Err(value_err(&key, "needs subscribe_proxy_url"));
            }
            if ns.publish_proxy && self.publish_proxy_url.is_none() {
                let key = format!("namespaces.{name}.publish_proxy");
                return Err(value_err(&key, "needs publish_proxy_url"));
            }
            if ns.publish_proxy && ns.ingress {
                let key = format!("namespaces.{name}.publish_proxy");
                return Err(value_err(&key, "cannot be combined with ingress"));
            }
            if let Some(path) = &ns.blocked_words_file {
                crate::chat::read_words(path)
                    .map_err(|e| value_err(&format!("namespaces.{name}.blocked_words_file"), e))?;
            }
            if name == crate::config::OTHER_NAMESPACES {
                continue;
            }
            if name.is_empty() || name.contains(':') || !crate::channel::valid_name(name) {
                return Err(value_err(
                    "namespaces",
                    format!("invalid namespace name {name:?}"),
                ));
            }
        }
        Ok(())
    }

    /// TLS: certificate and key come in pairs and load (a bad file is a startup error, not
    /// a failed handshake later); `tls_listen` needs them.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let pairs = [
            ("tls_cert", &self.tls_cert, &self.tls_key),
            ("admin_tls_cert", &self.admin_tls_cert, &self.admin_tls_key),
        ];
        for (key, cert, private) in pairs {
            match (cert, private) {
                (None, None) => {}
                (Some(cert), Some(private)) => {
                    crate::tls::Certs::load("check", cert, private)
                        .map_err(|e| value_err(key, e))?;
                }
                _ => return Err(value_err(key, "the certificate and its key go together")),
            }
        }
        if self.tls_listen.is_some() && self.tls_cert.is_none() {
            return Err(value_err("tls_listen", "needs tls_cert and tls_key"));
        }
        if self.tls_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(value_err("tls_listen", "must differ from listen"));
        }
        if self.tls_reload_interval.is_zero() {
            return Err(value_err(
                "tls_reload_interval",
                "must be greater than zero",
            ));
        }
        if let Some(path) = &self.redis_ca_file {
            super::certificates(path).map_err(|e| value_err("redis_ca_file", e))?;
        }
        Ok(())
    }
}
