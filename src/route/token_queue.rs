//! The queue of token store lookups from the shards to the control thread (`crate::tokens`,
//! `token_store = "redis"`). A shard never waits: a full queue refuses the lookup at once,
//! and the client is closed with the retryable code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::inbox::ConnRef;
use crate::config::Config;

/// Lookups waiting for Redis, at most; more are refused.
const CAPACITY: usize = 4096;

/// One token to look up.
pub struct Lookup {
    /// The token's SHA-256: the Redis key is `token_store_prefix` and its hex.
    pub digest: [u8; 32],
    /// Where the answer goes.
    pub to: ConnRef,
    /// For a `refresh` rather than at connect.
    pub refresh: bool,
    /// Closed when the connection is gone: the lookup's answer is not sent.
    pub gone: tokio::sync::watch::Receiver<()>,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Stats {
    /// Lookups sent to Redis.
    pub lookups: AtomicU64,
    /// Keys found and valid.
    pub found: AtomicU64,
    /// Missing, expired or malformed keys.
    pub refused: AtomicU64,
    /// Redis did not answer (or the queue was full).
    pub failed: AtomicU64,
    /// Answered from a shard's cache.
    pub cached: AtomicU64,
}

/// The shards' side of the token store.
pub struct TokenQueue {
    tx: tokio::sync::mpsc::Sender<Lookup>,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<Lookup>>>,
    pub stats: Stats,
}

impl TokenQueue {
    /// None unless `token_store` is set.
    pub fn new(config: &Config) -> Option<TokenQueue> {
        config.token_store?;
        let (tx, rx) = tokio::sync::mpsc::channel(CAPACITY);
        Some(TokenQueue {
            tx,
            rx: Mutex::new(Some(rx)),
            stats: Stats::default(),
        })
    }

    /// Queues a lookup without waiting; false when too many are waiting already.
    pub fn queue(&self, lookup: Lookup) -> bool {
        let queued = self.tx.try_send(lookup).is_ok();
        if !queued {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// The receiving end, for the token service (taken once).
    pub fn take_receiver(&self) -> Option<tokio::sync::mpsc::Receiver<Lookup>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
