//! The queue of calls from the shards to backends (`crate::rpc`, a service on the control
//! thread): clients' `rpc` calls and the subscribe and publish proxies' questions, with the
//! routes each call is checked against, a circuit breaker per backend, and the counters. A shard never waits: a full queue refuses the
//! call at once.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Uri;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use super::inbox::ConnRef;
use super::webhook_queue::{self, Webhooks};
use crate::breaker::{Breaker, State};
use crate::config::{Config, Routes};

/// One call on its way to a backend.
pub struct Call {
    pub url: Uri,
    /// The JSON the backend receives.
    pub body: Vec<u8>,
    /// Where the answer goes (`id` included).
    pub to: ConnRef,
    /// Who is calling, for the backend's headers and the logs.
    pub caller: Caller,
    pub queued_at: Instant,
    /// How long the call may take from `queued_at` (`rpc_timeout`, `connect_proxy_timeout`).
    pub timeout: Duration,
    /// Closed when the connection is gone: the call stops waiting.
    pub gone: tokio::sync::watch::Receiver<()>,
    pub purpose: Purpose,
    /// What the call's span needs: only when traces are on (else `None`, nothing built).
    pub trace: Option<CallTrace>,
}

/// A traced call: the client's `traceparent` (its span's parent) and the method called.
pub struct CallTrace {
    pub parent: Option<crate::telemetry::TraceParent>,
    pub method: Option<Box<str>>,
}

/// What a call to a backend is for, and so where its answer goes.
#[derive(Debug)]
pub enum Purpose {
    /// A client's `rpc`: the answer is a `result` or an `error` frame.
    Rpc,
    /// May the client subscribe (the subscribe proxy)?
    Subscribe {
        channel: Arc<str>,
        since: Option<crate::protocol::Since>,
        /// The client asked for the channel as deltas.
        delta: bool,
    },
    /// May the client publish this, and as what (the publish proxy)?
    Publish {
        channel: Arc<str>,
        data: Box<str>,
        /// The publish frame's `traceparent` (traces on), for the relay's span after.
        parent: Option<crate::telemetry::TraceParent>,
    },
    /// Who is this (the connect proxy)? At connect, or for a `refresh`.
    Connect { refresh: bool },
}

/// A proxy's answer (docs/proxies.md).
#[derive(Debug)]
pub enum Verdict {
    /// Allowed; for a publish, `data` replaces the client's; for a subscribe, `info` is
    /// the user's presence info on that channel.
    Allow {
        data: Option<Box<str>>,
        info: Option<Box<str>>,
    },
    /// Refused (by the backend, or because it failed): the error frame for the client.
    Refuse(bytes::Bytes),
}

/// The caller's identity and the call's correlation, sent as headers.
pub struct Caller {
    pub user: Box<str>,
    /// The connection id of the client's `welcome` (hex).
    pub conn: Box<str>,
    /// Unique per call: `<conn>-<n>`.
    pub request_id: Box<str>,
}

/// One backend's breaker and latency, with what `/metrics` shows of them.
pub struct BackendBreaker {
    /// The backend's URL, as calls name it...
    uri: Uri,
    /// ...and as metrics, logs and webhooks show it.
    pub url: String,
    breaker: Mutex<Breaker>,
    /// `State` as 0 closed, 1 open, 2 half-open.
    state: AtomicU8,
    /// Calls refused at once while open.
    pub rejected: AtomicU64,
    /// Transitions into closed, open and half-open.
    pub transitions: [AtomicU64; 3],
    /// How long the backend took to answer (seconds, from post to answer), for
    /// `ringhub_rpc_duration_seconds`: 1 ms to 16 s.
    pub latency: Histogram,
    /// Told of every transition (`rpc.breaker` events).
    hooks: Option<Arc<Webhooks>>,
}

pub const BREAKER_STATES: [State; 3] = [State::Closed, State::Open, State::HalfOpen];

impl BackendBreaker {
    fn new(uri: &Uri, config: &Config, hooks: Option<Arc<Webhooks>>) -> BackendBreaker {
        BackendBreaker {
            uri: uri.clone(),
            url: uri.to_string(),
            breaker: Mutex::new(Breaker::new(config.rpc_breaker())),
            state: AtomicU8::new(0),
            rejected: AtomicU64::new(0),
            transitions: Default::default(),
            latency: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            hooks,
        }
    }

    pub fn state(&self) -> State {
        BREAKER_STATES[self.state.load(Ordering::Relaxed) as usize % 3]
    }

    /// May a call go now? `Err(retry after)` when the breaker is open.
    pub fn admit(&self) -> Result<(), Duration> {
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        let (admission, moved) = b.admit(Instant::now());
        drop(b);
        self.moved(moved);
        match admission {
            crate::breaker::Admission::Go => Ok(()),
            crate::breaker::Admission::Refused { retry_after } => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(retry_after)
            }
        }
    }

    /// The outcome of a call `admit` let go: `failed` for a timeout, an unreachable
    /// backend or a 5xx answer.
    pub fn record(&self, failed: bool) {
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        let moved = b.record(failed, Instant::now());
        drop(b);
        self.moved(moved);
    }

    /// Counts and logs a transition, once.
    fn moved(&self, to: Option<State>) {
        let Some(to) = to else { return };
        let i = BREAKER_STATES.iter().position(|&s| s == to).unwrap_or(0);
        self.state.store(i as u8, Ordering::Relaxed);
        self.transitions[i].fetch_add(1, Ordering::Relaxed);
        match to {
            State::Open => {
                tracing::warn!(backend = %self.url, state = to.name(), "rpc breaker opened: calls are refused")
            }
            _ => tracing::info!(backend = %self.url, state = to.name(), "rpc breaker"),
        }
        if let Some(hooks) = &self.hooks {
            webhook_queue::breaker(hooks, &self.url, to.name());
        }
    }
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
    /// Stopped waiting because the client disconnected.
    pub cancelled: AtomicU64,
}

/// The shards' side: the routes, and the queue to the control thread.
pub struct RpcQueue {
    pub routes: Routes,
    /// One per backend URL.
    pub breakers: Vec<BackendBreaker>,
    tx: tokio::sync::mpsc::Sender<Call>,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<Call>>>,
    max_in_flight: usize,
    timeout: Duration,
    pub stats: Stats,
}

impl RpcQueue {
    /// None when no method has a backend (every `rpc` is then answered `not_found`).
    /// The config has been validated, so its URLs parse.
    pub fn new(config: &Config, hooks: Option<Arc<Webhooks>>) -> Option<RpcQueue> {
        let routes = Routes::new(config).ok().filter(Routes::any)?;
        let (tx, rx) = tokio::sync::mpsc::channel(config.rpc_max_in_flight.max(1));
        let breakers = routes
            .backends()
            .map(|uri| BackendBreaker::new(uri, config, hooks.clone()))
            .collect();
        Some(RpcQueue {
            routes,
            breakers,
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

    /// Where in `breakers` the breaker of the backend at `url` is (every routed URL has
    /// one).
    pub fn breaker_at(&self, url: &Uri) -> Option<usize> {
        self.breakers.iter().position(|b| b.uri == *url)
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
