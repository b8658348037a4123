//! ringhub: a thread-per-core WebSocket hub for large real-time games.
//!
//! # Layout
//!
//! - [`config`]: the typed configuration (TOML file, `RINGHUB_*` variables, flags).
//! - [`auth`]: JWT verification (HS/RS/PS/ES/EdDSA, PEM and JWKS keys) and token minting.
//! - [`channel`]: channel names, namespaces and permission patterns.
//! - [`protocol`]: the JSON frames, decoded without copying `data`, encoded once into frames.
//! - [`ws`]: WebSocket on the wire: frame heads, the message decoder, the HTTP upgrade.
//! - [`shard`]: one thread and one monoio runtime per core: accept, hand-off by user,
//!   connections, fan-out, the timing wheel, and the inbox other threads reach it through.
//! - [`shared`]: what the shards share: config, keys, inboxes, the channel interest map.
//! - [`control`]: the control-plane thread: the admin port (health, readiness, metrics, the
//!   server API) and the operations it asks of the shards through their inboxes.
//! - [`metrics`]: per-shard counters and latency histograms, merged for Prometheus.
//! - [`relay`]: the Redis relay between instances, and egress / ingress for backends.
//! - [`rpc`]: client `rpc` calls forwarded over HTTP to the backend of their method.
//! - [`revocation`]: token revocation rules, copied to every shard.
//! - [`hub`]: binding the listeners, starting the shards, draining and stopping.
//! - [`limits`]: the token bucket behind per-user and per-IP rate limits.
//! - [`per_ip`]: per-address connection rate and count, shared by all shards.
//! - [`sys`]: the handful of system calls made directly, and the only `unsafe`.
//!
//! The hot path (shards, framing, fan-out) never takes a lock or waits on another thread;
//! the control plane talks to shards only through their inboxes.

pub mod auth;
pub mod channel;
pub mod config;
pub mod control;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod per_ip;
pub mod protocol;
pub mod relay;
pub mod revocation;
pub mod route;
pub mod rpc;
pub mod shard;
pub mod shared;
pub mod sys;
pub mod ws;

pub use config::Config;
pub use hub::Hub;
