//! ringhub: a thread-per-core WebSocket hub for large real-time games.
//!
//! # Layout
//!
//! By layer, lowest first; a module uses only its own layer and those below
//! (docs/architecture.md; `tests/layers.rs` keeps it so).
//!
//! 1. Wire and identity
//!    - [`ws`]: WebSocket on the wire: frame heads, the message decoder, the HTTP upgrade.
//!    - [`protocol`]: the JSON frames (decoded without copying `data`, encoded once), the
//!      server API's bodies and the relay's envelope.
//!    - [`auth`]: JWT verification (HS/RS/PS/ES/EdDSA, PEM and JWKS keys), token minting,
//!      and the identities of opaque tokens (connect proxy answers, token store records).
//!    - [`config`]: the typed configuration (TOML file, `RINGHUB_*` variables, flags) and
//!      the rpc routes it names.
//!    - [`channel`]: channel names, namespaces and permission patterns.
//!    - [`limits`]: the token bucket behind per-user and per-IP rate limits.
//!    - [`breaker`]: the circuit breaker kept per backend.
//!    - [`chat`]: the chat rules of namespaces (length, invisible characters, words).
//!    - [`mutes`]: who may not publish where, until when.
//!    - [`revocation`]: token revocation rules, copied to every shard.
//!    - [`sys`]: the handful of system calls made directly, and the only `unsafe`.
//!    - [`tls`]: the listeners' certificates (PEM files, reloaded when they change), and
//!      their rustls server configuration.
//! 2. Shared state and routing
//!    - [`shared`]: what every thread shares: config, keys, inboxes, the interest map.
//!    - [`route`]: the one place that decides where work for a shard goes (deliver,
//!      sequence, recovery, history, direct messages), the shard inbox, the operations of
//!      the server API and egress, and the queues to the relay and the rpc proxy.
//!    - [`metrics`]: per-shard counters and latency histograms, merged for Prometheus.
//!    - [`per_ip`]: per-address connection rate and count, shared by all shards.
//!    - [`telemetry`]: OpenTelemetry traces (OTLP/HTTP) of the services' work, and the
//!      W3C `traceparent` a client or caller passes.
//! 3. [`shard`]: one thread and one monoio runtime per core: accept, hand-off by user,
//!    connections, requests, fan-out and writes, and the shard's state in owned parts.
//! 4. Services, on the control thread
//!    - [`relay`]: the Redis relay between instances, and egress / ingress for backends.
//!    - [`rpc`]: client `rpc` calls forwarded over HTTP to the backend of their method.
//!    - [`tokens`]: opaque tokens looked up in the Redis token store.
//!    - [`webhooks`]: events POSTed to backends, signed, retried, dead-lettered.
//!    - [`control`]: the admin port: health, readiness, metrics, the server API.
//! 5. [`hub`]: binding the listeners, starting the shards, readiness, death, shutdown.
//!
//! The hot path (shards, framing, fan-out) never takes a lock or waits on another thread;
//! the services reach shards only through [`route`].

pub mod auth;
pub mod breaker;
pub mod channel;
pub mod chat;
pub mod config;
pub mod control;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod mutes;
pub mod per_ip;
pub mod protocol;
pub mod relay;
pub mod revocation;
pub mod route;
pub mod rpc;
pub mod shard;
pub mod shared;
pub mod sys;
pub mod telemetry;
pub mod tls;
pub mod tokens;
pub mod webhooks;
pub mod ws;

pub use config::Config;
pub use hub::Hub;
