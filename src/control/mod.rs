//! The control plane: one thread with a small tokio runtime, off the shards' hot path. It
//! serves the admin port (health, readiness, metrics, the server API) and keeps the
//! revocation rules in Redis and runs the Redis relay when one is configured. It talks to
//! the shards only through the routing layer (`route::ops`).

mod admin;
mod api;
mod endpoint;
mod keys;
mod mutes;
mod openapi;
mod store;
mod throttle;
mod traced;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::shared::Shared;

pub use admin::MAX_BODY;

pub struct Control {
    thread: Option<JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    admin_addr: SocketAddr,
    shared: Arc<Shared>,
    keys: Arc<keys::Keys>,
}

impl Control {
    /// Starts the control thread on an already bound admin listener. Returns once stored
    /// revocations (if any) have been handed to the shards' inboxes, so that they are in
    /// force before the first connection is accepted.
    /// `tls`: the admin port serves TLS with it (`admin_tls_cert`).
    pub fn start(
        shared: Arc<Shared>,
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Control> {
        let admin_addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let keys = Arc::new(keys::Keys::new(&shared.config));
        let (for_control, for_thread) = (shared.clone(), keys.clone());
        let thread = std::thread::Builder::new()
            .name("ringhub-control".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let store = open_store(&shared).await;
                    let _ = started_tx.send(());
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot register the admin listener");
                            return;
                        }
                    };
                    if shared.relay.is_some() {
                        tokio::spawn(crate::relay::run(shared.clone()));
                    }
                    if shared.rpc.is_some() {
                        tokio::spawn(crate::rpc::run(shared.clone()));
                    }
                    if shared.tokens.is_some() {
                        tokio::spawn(crate::tokens::run(shared.clone()));
                    }
                    if shared.webhooks.is_some() {
                        tokio::spawn(crate::webhooks::run(shared.clone()));
                    }
                    let admin = Arc::new(admin::Admin::new(shared, for_thread, store));
                    tokio::select! {
                        _ = admin::serve(listener, admin, tls) => {}
                        _ = stop_rx => {}
                    }
                });
            })?;
        // Redis answering slowly delays the start by at most its timeout.
        let _ = started_rx.recv_timeout(Duration::from_secs(10));
        Ok(Control {
            thread: Some(thread),
            stop: Some(stop_tx),
            admin_addr,
            shared: for_control,
            keys,
        })
    }

    /// Reads the API keys again (`api_keys` and `api_keys_file`); a failure keeps the old
    /// ones. The hub registers it as a `SIGHUP` reload.
    pub fn key_reloader(&self) -> impl Fn() -> Result<String, String> + Send + Sync + 'static {
        let (shared, keys) = (self.shared.clone(), self.keys.clone());
        move || keys.reload(&shared.config)
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Stops serving the admin port.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Connects to Redis (when configured) and installs the stored revocations.
async fn open_store(shared: &Arc<Shared>) -> Option<store::Store> {
    let store = match crate::relay::Target::from_config(&shared.config)? {
        Ok(target) => store::Store::new(target, &shared.config.redis_prefix),
        Err(e) => {
            tracing::error!(error = %e, "revocations will not persist");
            return None;
        }
    };
    match store.load_mutes(crate::auth::unix_now()).await {
        Ok(mutes) => {
            for mute in mutes {
                crate::route::ops::mute(shared, mute, &None, crate::route::ops::Scope::Local);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot load mutes from Redis; starting without them"),
    }
    match store.load(crate::auth::unix_now()).await {
        Ok(rules) => {
            tracing::info!(rules = rules.len(), "revocations loaded from Redis");
            for rule in rules {
                crate::route::ops::install_rule(shared, rule);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot load revocations from Redis; starting without them")
        }
    }
    Some(store)
}
