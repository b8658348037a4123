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
        self.validate_webhooks()?;
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
}
