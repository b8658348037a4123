//! The queue of `rpc` calls from the shards to the rpc proxy (`crate::rpc`, a service on
//! the control thread), with the routes each call is checked against and the proxy's
//! counters. A shard never waits: a full queue refuses the call at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::Uri;

use super::inbox::ConnRef;
use crate::config::{Config, Routes};

/// One call on its way to a backend.
pub struct Call {
    pub url: Uri,
    /// The JSON the backend receives.
    pub body: Vec<u8>,
    /// Where the answer goes (`id` included).
    pub to: ConnRef,
    pub queued_at: Instant,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Stats {
    /// Calls queued for a backend.
    pub calls: AtomicU64,
    /// Answered by the backend with `data` or an `error` of its own.
    pub answered: AtomicU64,
    /// Unreachable backend, HTTP error status, malformed answer, or timeout.
    pub failed: AtomicU64,
    /// Refused at once: too many calls waiting.
    pub refused: AtomicU64,
}

/// The shards' side: the routes, and the queue to the control thread.
pub struct RpcQueue {
    pub routes: Routes,
    tx: tokio::sync::mpsc::Sender<Call>,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<Call>>>,
    max_in_flight: usize,
    timeout: Duration,
    pub stats: Stats,
}

impl RpcQueue {
    /// None when no method has a backend (every `rpc` is then answered `not_found`).
    /// The config has been validated, so its URLs parse.
    pub fn new(config: &Config) -> Option<RpcQueue> {
        let routes = Routes::new(config).ok().filter(Routes::any)?;
        let (tx, rx) = tokio::sync::mpsc::channel(config.rpc_max_in_flight.max(1));
        Some(RpcQueue {
            routes,
            tx,
            rx: Mutex::new(Some(rx)),
            max_in_flight: config.rpc_max_in_flight.max(1),
            timeout: config.rpc_timeout,
            stats: Stats::default(),
        })
    }

    /// Queues a call without waiting; false when too many are waiting already.
    pub fn queue(&self, call: Call) -> bool {
        let queued = self.tx.try_send(call).is_ok();
        let counter = if queued {
            &self.stats.calls
        } else {
            &self.stats.refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
        queued
    }

    /// The receiving end, for the rpc proxy (taken once).
    pub fn take_receiver(&self) -> Option<tokio::sync::mpsc::Receiver<Call>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Calls posted at once, at most (`rpc_max_in_flight`).
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// How long a call may take, from the moment it was queued (`rpc_timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}
