//! The Redis client every Redis connection of the hub is made from (the relay, and through
//! it history, ingress and the webhooks' dead letters; the revocation and mute store):
//! `redis://`, or `rediss://` over TLS (rustls) trusting the certificates of
//! `redis_ca_file`, or the system's roots without it. A user and password in the URL
//! (`redis://user:password@host:6379`) log in as that ACL user (Redis 6+), a password
//! alone (`redis://:password@host`) as the default user.

use super::Config;

/// The client for `redis_url`; an error names what is wrong (the URL, the CA file).
pub fn redis_client(config: &Config) -> Result<redis::Client, String> {
    let url = config.redis_url.as_deref().unwrap_or_default();
    let result = match &config.redis_ca_file {
        Some(path) if url.starts_with("rediss://") => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("redis_ca_file {}: {e}", path.display()))?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            redis::Client::build_with_tls(url, certs)
        }
        _ => redis::Client::open(url),
    };
    // The error may quote the URL; never its password.
    result.map_err(|e| match e.kind() {
        redis::ErrorKind::InvalidClientConfig => "invalid redis_url".to_string(),
        _ => format!("redis_url: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> Config {
        Config {
            redis_url: Some(url.into()),
            ..Config::default()
        }
    }

    #[test]
    fn takes_users_passwords_and_tls() {
        let client = redis_client(&with_url("redis://app:s3cret@127.0.0.1:6390/2")).unwrap();
        let info = client.get_connection_info();
        assert_eq!(info.redis_settings().username(), Some("app"));
        assert_eq!(info.redis_settings().password(), Some("s3cret"));
        assert!(redis_client(&with_url("rediss://127.0.0.1:6390")).is_ok());
        let mut missing_ca = with_url("rediss://127.0.0.1:6390");
        missing_ca.redis_ca_file = Some("/nonexistent/ca.pem".into());
        let e = redis_client(&missing_ca).unwrap_err();
        assert!(e.contains("redis_ca_file"), "{e}");
        let e = redis_client(&with_url("redis://u:hunter2@[bad")).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
