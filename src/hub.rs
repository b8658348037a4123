//! Starting and stopping a hub: bind one SO_REUSEPORT listener per shard, start the shard
//! threads, and drain on request. `main` and the integration tests both go through [`Hub`].

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::Rng;
use socket2::{Domain, Protocol, Socket, Type};

use crate::auth::Verifier;
use crate::config::Config;
use crate::control::Control;
use crate::route::inbox::ShardMsg;
use crate::shard::{self};
use crate::shared::Shared;
use crate::sys;

/// Why a hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot load JWT keys: {0}")]
    Keys(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start shard {shard}: {source}")]
    Shard {
        shard: usize,
        source: std::io::Error,
    },
}

pub struct Hub {
    shared: Arc<Shared>,
    control: Option<Control>,
    threads: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
    secret: Vec<u8>,
}

impl Hub {
    /// Validates the configuration, binds, and starts every shard. Returns once all shards
    /// are serving and `/ready` answers 200.
    pub fn start(config: Config) -> Result<Hub, StartError> {
        config.validate()?;
        let shards = config.shard_count();
        let secret = if config.jwt_secret.is_empty() {
            let bytes: [u8; 32] = rand::rng().random();
            hex::encode(bytes).into_bytes()
        } else {
            config.jwt_secret.clone().into_bytes()
        };
        let verifier = Verifier::new(&config, &secret).map_err(StartError::Keys)?;
        let instance = if config.instance_id.is_empty() {
            default_instance_id()
        } else {
            config.instance_id.clone()
        };
        let listeners = bind_all(config.listen, shards, config.listen_backlog)?;
        let local_addr = listeners[0]
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let driver_setting = config.driver;
        let driver = shard::driver_name(driver_setting);
        let admin_listen = config.admin_listen;
        let admin = TcpListener::bind(admin_listen).map_err(|source| StartError::Bind {
            addr: admin_listen,
            source,
        })?;
        let shared = Shared::new(config, verifier, instance, shards);
        // Before the shards: stored revocations must be in their inboxes first.
        let control = Control::start(shared.clone(), admin).map_err(|source| StartError::Bind {
            addr: admin_listen,
            source,
        })?;
        let admin_addr = control.admin_addr();
        let cpus = sys::allowed_cpus();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(shards);
        for (index, listener) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            let cpu = (shards <= cpus.len()).then(|| cpus[index]);
            let started = started_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ringhub-shard-{index}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if !sys::pin_to_cpu(cpu) {
                            tracing::debug!(shard = index, cpu, "not allowed to pin");
                        }
                    }
                    let _ = started.send(());
                    if let Err(e) = shard::run(shared, index, listener, driver_setting) {
                        tracing::error!(shard = index, error = %e, "shard runtime failed");
                    }
                })
                .map_err(|source| StartError::Shard {
                    shard: index,
                    source,
                })?;
            threads.push(thread);
        }
        for _ in 0..shards {
            let _ = started_rx.recv_timeout(Duration::from_secs(10));
        }
        shared.ready.store(true, Ordering::Release);
        tracing::info!(addr = %local_addr, admin = %admin_addr, shards, driver = %driver, instance = %shared.instance, "ringhub ready");
        Ok(Hub {
            shared,
            control: Some(control),
            threads,
            local_addr,
            secret,
        })
    }

    /// The public address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The HS secret in force (the configured one, or the random development secret).
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.control.as_ref().expect("running").admin_addr()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Turns `/ready` to 503, stops accepting, and tells every connection to reconnect.
    pub fn begin_drain(&self) {
        if self.shared.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.ready.store(false, Ordering::Release);
        let jitter_ms = self.shared.config.reconnect_jitter.as_millis() as u64;
        for shard in 0..self.shared.shards() {
            self.shared.send(shard, ShardMsg::Drain { jitter_ms });
        }
    }

    /// Drains and stops: waits until every connection is gone or `drain_timeout` passed,
    /// then stops the shards. Returns the connections still open at the end.
    pub fn shutdown(mut self) -> usize {
        self.begin_drain();
        let deadline = Instant::now() + self.shared.config.drain_timeout;
        while self.shared.connections.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let left = self.shared.connections.load(Ordering::Acquire);
        for shard in 0..self.shared.shards() {
            self.shared.send(shard, ShardMsg::Stop);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(control) = self.control.take() {
            control.stop();
        }
        tracing::info!(left, "ringhub stopped");
        left
    }
}

/// One listener per shard on the same address, with SO_REUSEPORT so the kernel spreads
/// connections over them. With port 0 the first bind picks the port for the others.
fn bind_all(addr: SocketAddr, shards: usize, backlog: u32) -> Result<Vec<TcpListener>, StartError> {
    let backlog = backlog
        .min(sys::somaxconn().unwrap_or(u32::MAX))
        .min(i32::MAX as u32) as i32;
    let mut addr = addr;
    let mut out = Vec::with_capacity(shards);
    for _ in 0..shards {
        let bind = |addr: SocketAddr| -> std::io::Result<TcpListener> {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(backlog)?;
            Ok(socket.into())
        };
        let listener = bind(addr).map_err(|source| StartError::Bind { addr, source })?;
        if addr.port() == 0 {
            addr = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
        }
        out.push(listener);
    }
    Ok(out)
}

/// Host name plus a random suffix.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ringhub".into());
    let suffix: u32 = rand::rng().random();
    format!("{host}-{:06x}", suffix & 0xFF_FFFF)
}
