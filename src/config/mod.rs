//! Configuration: one typed struct, read from a TOML file, then `RINGHUB_*` environment
//! variables, then command-line flags (each layer overrides the one before). Every key and
//! its default is listed in `docs/configuration.md`; `docs/protocol.md` §8 is the contract.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

mod api_keys;
mod defaults;
mod redis_client;
mod rpc_routes;
mod webhooks;
pub use api_keys::{ApiKey, Scope, Scopes};
pub use redis_client::redis_client;
pub use rpc_routes::Routes;
pub use webhooks::{Delivery, EventKind, Webhook};

/// Environment variables named by the protocol (§8). Every top-level key `k` can also be set
/// as `RINGHUB_<K>`; these are the ones whose names do not follow from a key.
pub mod env {
    pub const CONFIG: &str = "RINGHUB_CONFIG";
    pub const LISTEN: &str = "RINGHUB_LISTEN";
    pub const ADMIN_LISTEN: &str = "RINGHUB_ADMIN_LISTEN";
    pub const SHARDS: &str = "RINGHUB_SHARDS";
    pub const INSTANCE_ID: &str = "RINGHUB_INSTANCE_ID";
    pub const JWT_SECRET: &str = "RINGHUB_JWT_SECRET";
    pub const JWT_PUBLIC_KEY: &str = "RINGHUB_JWT_PUBLIC_KEY";
    pub const JWKS_FILE: &str = "RINGHUB_JWKS_FILE";
    pub const JWT_ISSUER: &str = "RINGHUB_JWT_ISSUER";
    pub const JWT_AUDIENCE: &str = "RINGHUB_JWT_AUDIENCE";
    pub const REDIS_URL: &str = "RINGHUB_REDIS_URL";
    pub const API_KEYS: &str = "RINGHUB_API_KEYS";
    pub const LOG: &str = "RINGHUB_LOG";
    /// Read by the test suite, not by the hub.
    pub const REQUIRE_REDIS: &str = "RINGHUB_REQUIRE_REDIS";

    /// `RINGHUB_*` variables that are not settings: never refused as unknown.
    pub const NOT_SETTINGS: [&str; 2] = [CONFIG, REQUIRE_REDIS];
}

/// Which monoio driver the shards run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// io_uring when the kernel (and seccomp profile) allow it, epoll otherwise.
    Auto,
    /// io_uring only; start fails where it is unavailable.
    #[serde(alias = "iouring", alias = "uring")]
    IoUring,
    /// epoll (monoio's legacy driver).
    #[serde(alias = "legacy")]
    Epoll,
}

/// Where opaque tokens are looked up (`token_store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStore {
    /// `GET <token_store_prefix><sha256 hex>` on `redis_url`.
    Redis,
}

/// The `[namespaces."*"]` entry: the settings of every namespace not configured by name.
pub const OTHER_NAMESPACES: &str = "*";

/// Per-namespace settings (`[namespaces.<name>]`, §3).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Namespace {
    /// Any authenticated user may subscribe.
    pub public: bool,
    /// Clients may publish (with a matching `publish` claim, or anyone when `public`).
    pub client_publish: bool,
    /// Publications kept for recovery (0: none).
    pub history_size: usize,
    /// How long publications are kept.
    #[serde(deserialize_with = "duration_opt")]
    pub history_ttl: Option<Duration>,
    /// Track who is subscribed.
    pub presence: bool,
    /// Announce `join` / `leave`.
    pub join_leave: bool,
    /// Client publishes go to the ingress stream instead of subscribers.
    pub ingress: bool,
    /// Chat rules (docs/chat.md): the most characters of text in a client publication's
    /// `data` (every string in it); none or 0: no limit.
    pub max_text_length: Option<usize>,
    /// Refuse control characters (but tab and newline) and zero-width characters.
    pub reject_invisible: bool,
    /// A file of blocked words, one per line; a publication using one is refused.
    pub blocked_words_file: Option<PathBuf>,
    /// Client publications per second per user in this namespace, on top of the global
    /// limit (0: no such limit), with bursts up to `user_publish_burst`.
    pub user_publishes_per_second: u32,
    pub user_publish_burst: u32,
    /// A subscribe the token does not allow is asked of `subscribe_proxy_url`
    /// (docs/proxies.md).
    pub subscribe_proxy: bool,
    /// Every client publish is asked of `publish_proxy_url` first, which may accept it,
    /// replace its `data`, or refuse it.
    pub publish_proxy: bool,
    /// Publications are sent to the webhook endpoints that take `publication` events.
    pub webhook: bool,
    /// Subscribers may take publications as Fossil deltas against the previous one
    /// (`"delta":"fossil"` in `subscribe`; docs/protocol.md, "Deltas").
    pub deltas: bool,
    /// A state channel: past `conflate_queue_bytes` queued to a subscriber, a publication
    /// replaces the queued ones of its channel instead of adding to the queue.
    pub conflate: bool,
}

/// The whole configuration. Field docs are the reference; defaults follow §8.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Public address (WebSocket, `/health`, `/ready`).
    pub listen: SocketAddr,
    /// Admin address (server API, metrics).
    pub admin_listen: SocketAddr,
    /// Shard threads; 0 means the CPUs this process may use (cgroup quota included).
    pub shards: usize,
    /// This instance's id; empty means host name plus a random suffix.
    pub instance_id: String,
    /// io_uring, epoll, or auto.
    pub driver: Driver,
    /// HS256/384/512 shared secret; empty means a random one (development only).
    pub jwt_secret: String,
    /// PEM public key for RS*/PS*/ES*/EdDSA tokens.
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS file; `kid` selects the key.
    pub jwks_file: Option<PathBuf>,
    /// Required `iss`.
    pub jwt_issuer: Option<String>,
    /// Required `aud`.
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on `exp` / `nbf` / `iat`.
    #[serde(deserialize_with = "duration")]
    pub jwt_leeway: Duration,
    /// Redis for the relay, history and ingress; none means a single instance.
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes instead of `redis_url` (`host:port` or `redis://host:port`
    /// each, or one `redis+cluster://host:port,host:port`): the relay then publishes
    /// channels with `SPUBLISH` to their slots (docs/relay.md, "Redis Cluster").
    pub redis_cluster: Vec<String>,
    /// Prefix of every Redis key and topic ringhub uses.
    pub redis_prefix: String,
    /// Approximate `MAXLEN` of the ingress stream (0: not trimmed).
    pub ingress_maxlen: usize,
    /// Messages the relay may hold waiting for Redis before it drops (and counts) more.
    pub relay_queue: usize,
    /// How long a revocation is kept when the revoked token's `exp` is not known.
    #[serde(deserialize_with = "duration")]
    pub revocation_ttl: Duration,
    /// SHA-256 hex digests of server API keys, each granting every scope.
    pub api_keys: Vec<String>,
    /// A TOML file of named, scoped API keys (`config/api_keys.rs`), read again on SIGHUP.
    pub api_keys_file: Option<PathBuf>,
    /// Server API requests per second per key name, and the burst above it (0: no limit).
    pub api_rate_per_key: u32,
    pub api_burst_per_key: u32,
    /// Server API requests per second per client address, and the burst (0: no limit).
    pub api_rate_per_ip: u32,
    pub api_burst_per_ip: u32,
    /// Origins (and `scheme://*.domain` patterns) a WebSocket upgrade may come from;
    /// empty: any.
    pub allowed_origins: crate::ws::origin::Origins,
    /// An upgrade without an `Origin` header (not a browser) is allowed.
    pub allow_missing_origin: bool,
    /// Log filter and format, e.g. `info` or `info,json`.
    pub log: String,

    #[serde(deserialize_with = "duration")]
    pub ping_interval: Duration,
    #[serde(deserialize_with = "duration")]
    pub pong_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub auth_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub refresh_window: Duration,
    #[serde(deserialize_with = "duration")]
    pub drain_timeout: Duration,
    /// Time a client gets to answer our close frame before the socket is dropped.
    #[serde(deserialize_with = "duration")]
    pub close_timeout: Duration,
    /// Time a client gets to send a complete HTTP upgrade request.
    #[serde(deserialize_with = "duration")]
    pub handshake_timeout: Duration,
    /// Bytes, per frame and per reassembled message.
    pub max_message_size: usize,
    /// Most fragments one message may have.
    pub max_fragments: usize,
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub max_subscriptions_per_connection: usize,
    /// Bytes queued per connection before it is a slow consumer (close 4009).
    pub send_queue_bytes: usize,
    /// A connection is written at most once per this interval: frames for one written more
    /// recently wait for the rest of it and share its next send (`shard::pace`). Zero
    /// writes every connection at the end of each pass.
    #[serde(deserialize_with = "duration")]
    pub write_interval: Duration,
    /// Queued bytes past which a publication of a `conflate` namespace replaces the
    /// queued ones of its channel.
    pub conflate_queue_bytes: usize,
    pub messages_per_second: u32,
    pub burst: u32,
    pub connects_per_second_per_ip: u32,
    pub max_connections_per_ip: usize,
    /// Listen backlog, bounded by the kernel's `net.core.somaxconn`.
    pub listen_backlog: u32,
    /// Upper bound of the jitter of `reconnect.after_ms` while draining.
    #[serde(deserialize_with = "duration")]
    pub reconnect_jitter: Duration,
    /// Testing only: serve an echo endpoint at `/echo` (for the Autobahn suite).
    pub echo_endpoint: bool,
    /// permessage-deflate (RFC 7692) with clients that offer it (`docs/protocol.md`,
    /// compression). Off by default: it costs a compression per publication (shared by
    /// its recipients) and an inflate per compressed client message, which pays only for
    /// payloads of a few hundred bytes or more on metered links; turn it on for those.
    pub compression: bool,
    /// Frames with a payload under this many bytes go out uncompressed (RSV1 clear).
    pub compression_threshold: usize,
    /// zlib level: 1 (fastest) to 9 (smallest).
    pub compression_level: u32,
    /// Let a client keep its compression context between its messages (when it does not
    /// offer `client_no_context_takeover`): better compression of what clients send, at
    /// the cost of an inflate state (~46 KiB) held by every such connection. Off: the hub
    /// answers `client_no_context_takeover`, and an idle connection holds none.
    pub compression_client_context: bool,

    /// `rpc`: the HTTP backend for every method `rpc_methods` does not route elsewhere.
    pub rpc_url: Option<String>,
    /// `rpc`: method pattern (an exact name, or a prefix ending in `*`) -> backend URL; the
    /// longest matching pattern wins.
    pub rpc_methods: HashMap<String, String>,
    /// `rpc`: how long a call may take, from the client's frame to the backend's answer.
    #[serde(deserialize_with = "duration")]
    pub rpc_timeout: Duration,
    /// `rpc`: calls posted to backends at once (hub-wide); as many more may wait, and
    /// beyond that a call is refused with `unavailable`.
    pub rpc_max_in_flight: usize,
    /// `rpc`: signs every call (`X-Ringhub-Signature`, HMAC-SHA256 over the timestamp and
    /// the body), so a backend can tell that it came from the hub.
    pub rpc_secret: Option<String>,
    /// `rpc` to `https://` backends: trust only the certificates in this PEM file, instead
    /// of the system's roots.
    pub rpc_ca_file: Option<PathBuf>,
    /// The backend asked about subscribes on namespaces with `subscribe_proxy`.
    pub subscribe_proxy_url: Option<String>,
    /// The backend asked about publishes on namespaces with `publish_proxy`.
    pub publish_proxy_url: Option<String>,
    /// The backend asked who a connection is when the hub cannot verify its token itself.
    pub connect_proxy_url: Option<String>,
    /// Ask the connect proxy about every token, JWTs included.
    pub connect_proxy_always: bool,
    /// Request headers passed to the connect proxy (names; `Cookie` only if listed).
    pub connect_proxy_headers: Vec<String>,
    /// How long a connect proxy call may take.
    #[serde(deserialize_with = "duration")]
    pub connect_proxy_timeout: Duration,
    /// Where opaque (non-JWT) tokens are looked up: `redis` (needs `redis_url`), or none.
    pub token_store: Option<TokenStore>,
    /// Key prefix of the token store: the key is the prefix and the token's SHA-256 in hex.
    pub token_store_prefix: String,
    /// How long a shard keeps a token found in the store.
    #[serde(deserialize_with = "duration")]
    pub token_cache_ttl: Duration,
    /// Tokens a shard keeps at most (0: no cache).
    pub token_cache_entries: usize,
    /// `rpc` circuit breaker, per backend: opens after this many failures in a row (0: off).
    pub rpc_breaker_failures: u32,
    /// ...or when this share of the last `rpc_breaker_window` calls failed (0: off)...
    pub rpc_breaker_failure_ratio: f64,
    /// ...counted once there are at least `rpc_breaker_min_calls` of them.
    pub rpc_breaker_min_calls: u32,
    pub rpc_breaker_window: u32,
    /// How long an open breaker refuses calls before letting probes through.
    #[serde(deserialize_with = "duration")]
    pub rpc_breaker_open_for: Duration,
    /// Probe calls let through while half-open; all must succeed to close it.
    pub rpc_breaker_half_open_calls: u32,

    /// Webhook endpoints (`[[webhooks]]`: `url`, `events`, `secret`).
    pub webhooks: Vec<Webhook>,
    /// Webhooks: how long one delivery attempt may take.
    #[serde(deserialize_with = "duration")]
    pub webhook_timeout: Duration,
    /// Webhooks: attempts per event (the first included) before it is dead-lettered.
    pub webhook_attempts: u32,
    /// Webhooks: the first retry waits up to this long (full jitter), doubling each time...
    #[serde(deserialize_with = "duration")]
    pub webhook_backoff: Duration,
    /// ...up to this.
    #[serde(deserialize_with = "duration")]
    pub webhook_backoff_max: Duration,
    /// Webhooks: events waiting per endpoint before more are dropped (and counted).
    pub webhook_queue: usize,
    /// Webhooks: deliveries under way at once per endpoint (retries waiting included).
    pub webhook_max_in_flight: usize,
    /// Approximate `MAXLEN` of the dead-letter stream `<prefix>webhooks-dead` (0: not trimmed).
    pub webhook_dead_maxlen: usize,

    /// TLS on the client listener (docs/tls.md): the certificate chain and its private key,
    /// PEM files. With both set, `tls_listen` serves TLS (`listen` staying plaintext), or,
    /// without `tls_listen`, `listen` itself does.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A second client listener, TLS, beside the plaintext `listen`.
    pub tls_listen: Option<SocketAddr>,
    /// How often the certificate files' modification times are looked at; a change reloads
    /// them (so does `SIGHUP`).
    #[serde(deserialize_with = "duration")]
    pub tls_reload_interval: Duration,
    /// TLS on the admin port, with its own certificate and key.
    pub admin_tls_cert: Option<PathBuf>,
    pub admin_tls_key: Option<PathBuf>,
    /// `rediss://` URLs: trust only the certificates of this PEM file (else the system's).
    pub redis_ca_file: Option<PathBuf>,
    /// Traces: the OTLP/HTTP (protobuf) endpoint spans are posted to, used as given (e.g.
    /// `http://collector:4318/v1/traces`). None: no span is built, nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// Traces: the share of traces started here that are kept (0..1); a trace whose parent
    /// (a client's or caller's `traceparent`) was sampled is kept, one that was not is not.
    pub trace_sample_ratio: f64,
    /// Traces: the `service.name` resource attribute.
    pub service_name: String,
    /// Traces: the longest a finished span waits before its batch is exported.
    #[serde(deserialize_with = "duration")]
    pub trace_export_delay: Duration,

    pub namespaces: HashMap<String, Namespace>,
}

/// A configuration that cannot be used; `main` prints it on one line and exits 64.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {key}: {message}")]
    Value { key: String, message: String },
}

fn value_err(key: &str, message: impl ToString) -> ConfigError {
    ConfigError::Value {
        key: key.to_string(),
        message: message.to_string(),
    }
}

impl Config {
    /// Whether a Redis (one server or a cluster) joins the instances.
    pub fn has_redis(&self) -> bool {
        self.redis_url.is_some() || !self.redis_cluster.is_empty()
    }

    /// The namespace settings of a channel: its namespace's, else those of `"*"` (every
    /// namespace not configured by name, a ringhub addition), else every option off.
    pub fn namespace(&self, channel: &str) -> &Namespace {
        static NONE: Namespace = Namespace {
            public: false,
            client_publish: false,
            history_size: 0,
            history_ttl: None,
            presence: false,
            join_leave: false,
            ingress: false,
            max_text_length: None,
            reject_invisible: false,
            blocked_words_file: None,
            user_publishes_per_second: 0,
            user_publish_burst: 0,
            subscribe_proxy: false,
            publish_proxy: false,
            webhook: false,
            deltas: false,
            conflate: false,
        };
        let ns = crate::channel::namespace_of(channel);
        self.namespaces
            .get(ns)
            .or_else(|| self.namespaces.get(OTHER_NAMESPACES))
            .unwrap_or(&NONE)
    }

    /// Does the channel's namespace keep history (`history_size` > 0)?
    /// The rpc circuit breaker's settings (one breaker per backend).
    pub fn rpc_breaker(&self) -> crate::breaker::Settings {
        crate::breaker::Settings {
            consecutive_failures: self.rpc_breaker_failures,
            failure_ratio: self.rpc_breaker_failure_ratio,
            min_calls: self.rpc_breaker_min_calls,
            window: self.rpc_breaker_window,
            open_for: self.rpc_breaker_open_for,
            half_open_calls: self.rpc_breaker_half_open_calls,
        }
    }

    pub fn keeps_history(&self, channel: &str) -> bool {
        self.namespace(channel).history_size > 0
    }

    /// Shards to run: the setting, or the CPUs this process may use.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            return self.shards;
        }
        crate::sys::available_cpus().clamp(1, 64)
    }
}

/// Parses `"500ms"`, `"25s"`, `"24h"`, `"1m 30s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (expected e.g. \"500ms\", \"25s\")"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

mod lenient;
mod sources;
mod validate;

#[cfg(test)]
mod tests;

/// The certificates of a PEM file (`rpc_ca_file`): at least one, or why not.
pub fn certificates(
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}
