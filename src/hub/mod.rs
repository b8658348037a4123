//! Starting and stopping a hub: bind one SO_REUSEPORT listener per shard, start the shard
//! threads, and drain on request. `main` and the integration tests both go through [`Hub`].

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use rand::Rng;
use socket2::{Domain, Protocol, Socket, Type};

use crate::auth::Verifier;
use crate::config::{Config, Driver};
use crate::control::Control;
use crate::route::inbox::ShardMsg;
use crate::shard::{self};
use crate::shared::Shared;
use crate::sys;
use life::{Life, Report, Watch};

mod life;
pub mod reload;
mod tls;

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
    #[error("driver = \"io_uring\", but shard {shard} cannot set up io_uring: {source} (the kernel or a seccomp profile refuses it; driver = \"auto\" falls back to epoll)")]
    IoUring {
        shard: usize,
        source: std::io::Error,
    },
}

pub struct Hub {
    shared: Arc<Shared>,
    control: Option<Control>,
    threads: Vec<JoinHandle<()>>,
    watch: Arc<Watch>,
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    secret: Vec<u8>,
    reloads: reload::Reloads,
    /// Polls the certificate files (None without TLS).
    _tls_watch: Option<crate::tls::watch::Watcher>,
}

impl Hub {
    /// Validates the configuration, binds, and starts every shard. Returns once every shard
    /// has built its runtime and registered its listener, and `/ready` answers 200; when one
    /// cannot, the others are stopped and its error returned.
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
        let tls = tls::Listeners::load(&config)?;
        let listeners = bind_all(config.listen, shards, config.listen_backlog)?;
        let local_addr = listeners[0]
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let (listeners, tls_addr) = tls.bind(&config, listeners, local_addr)?;
        let driver_setting = config.driver;
        let driver = shard::driver_name(driver_setting);
        let admin_listen = config.admin_listen;
        let admin = TcpListener::bind(admin_listen).map_err(|source| StartError::Bind {
            addr: admin_listen,
            source,
        })?;
        let shared = Shared::new(config, verifier, instance, shards);
        // Before the shards: stored revocations must be in their inboxes first.
        let control =
            Control::start(shared.clone(), admin, tls.admin_config()).map_err(|source| {
                StartError::Bind {
                    addr: admin_listen,
                    source,
                }
            })?;
        let admin_addr = control.admin_addr();
        let cpus = sys::allowed_cpus();
        let watch = Arc::new(Watch::new());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(shards);
        for (index, listener) in listeners.into_iter().enumerate() {
            let for_shard = shared.clone();
            let cpu = (shards <= cpus.len()).then(|| cpus[index]);
            let life = listener.try_clone_all().map(|dup| {
                Life::new(
                    index,
                    shared.clone(),
                    watch.clone(),
                    started_tx.clone(),
                    dup,
                )
            });
            let thread = life.and_then(|life| {
                std::thread::Builder::new()
                    .name(format!("ringhub-shard-{index}"))
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            if !sys::pin_to_cpu(cpu) {
                                tracing::debug!(shard = index, cpu, "not allowed to pin");
                            }
                        }
                        let ended =
                            shard::run(for_shard, index, listener, driver_setting, |started| {
                                life.started(started)
                            });
                        life.ended(ended);
                    })
            });
            match thread {
                Ok(t) => threads.push(t),
                Err(source) => {
                    stop_shards(&shared, &watch, threads);
                    return Err(StartError::Shard {
                        shard: index,
                        source,
                    });
                }
            }
        }
        // Each shard's `Life` answers exactly once, also when its thread panics.
        drop(started_tx);
        for _ in 0..shards {
            let report = started_rx.recv();
            let failure = match report.expect("each Life reports before its sender drops") {
                Report::Serving => continue,
                Report::NoRuntime { shard, source } if driver_setting == Driver::IoUring => {
                    StartError::IoUring { shard, source }
                }
                Report::NoRuntime { shard, source } | Report::Failed { shard, source } => {
                    StartError::Shard { shard, source }
                }
            };
            stop_shards(&shared, &watch, threads);
            return Err(failure);
        }
        if shared.config.allowed_origins.is_empty() && !local_addr.ip().is_loopback() {
            tracing::warn!(addr = %local_addr, "no allowed_origins on a public listener: a page of any web site may open WebSockets to this hub (docs/security.md)");
        }
        let reloads = reload::Reloads::default();
        reloads.register("api keys", control.key_reloader());
        let tls_watch = tls.watch(&shared, &reloads);
        shared.ready.store(true, Ordering::Release);
        tracing::info!(addr = %local_addr, admin = %admin_addr, shards, driver = %driver, instance = %shared.instance, "ringhub ready");
        Ok(Hub {
            shared,
            control: Some(control),
            threads,
            watch,
            local_addr,
            tls_addr,
            secret,
            reloads,
            _tls_watch: tls_watch,
        })
    }

    /// What `SIGHUP` reloads; more actions may be registered on it.
    pub fn reloads(&self) -> &reload::Reloads {
        &self.reloads
    }

    /// The public address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TLS client address actually bound: `tls_listen`, or `listen` when it serves TLS
    /// itself; None without TLS.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
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

    /// Yields the index of each shard thread that ends without being told to stop (it
    /// panicked, or its runtime ended). `/ready` answers 503 from then on; the binary exits
    /// on it, an in-process user decides for itself.
    pub fn shard_died(&self) -> &crossbeam_channel::Receiver<usize> {
        &self.watch.died_rx
    }

    /// Drains and stops: waits until every connection is gone or `drain_timeout` passed,
    /// then stops the shards. Returns the connections still open at the end.
    pub fn shutdown(mut self) -> usize {
        self.begin_drain();
        let deadline = Instant::now() + self.shared.config.drain_timeout;
        let left = self.shared.wait_no_connections(deadline);
        stop_shards(&self.shared, &self.watch, std::mem::take(&mut self.threads));
        if let Some(control) = self.control.take() {
            control.stop();
        }
        // The spans of the last calls, exported before the process goes.
        if let Some(traces) = &self.shared.traces {
            traces.shutdown();
        }
        tracing::info!(left, "ringhub stopped");
        left
    }
}

/// Tells every shard to stop and waits for their threads; none of them counts as dead.
fn stop_shards(shared: &Shared, watch: &Watch, threads: Vec<JoinHandle<()>>) {
    watch.stopping.store(true, Ordering::Release);
    for shard in 0..shared.shards() {
        shared.send(shard, ShardMsg::Stop);
    }
    for t in threads {
        let _ = t.join();
    }
}

/// One listener per shard on the same address, with SO_REUSEPORT so the kernel spreads
/// connections over them. With port 0 the first bind picks the port for the others.
/// TCP_NODELAY is set on the listener: Linux copies it to every socket `accept` returns,
/// which saves a `setsockopt` per connection (`shard::accept`).
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
            socket.set_tcp_nodelay(true)?;
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

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read};

    /// A socket the shard accepts is non-blocking and has TCP_NODELAY without a system call
    /// of its own for either (`bind_all`, `shard::accept`).
    #[test]
    fn accepted_sockets_are_nonblocking_without_nagle() {
        let listeners = super::bind_all("127.0.0.1:0".parse().unwrap(), 1, 16).unwrap();
        let client = std::net::TcpStream::connect(listeners[0].local_addr().unwrap()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let (socket, peer) = loop {
            match crate::shard::accept(&listeners[0]) {
                Ok(Some(accepted)) => break accepted,
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                other => panic!("accept: {other:?}"),
            }
        };
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(
            socket.nodelay().unwrap(),
            "TCP_NODELAY comes from the listener"
        );
        let read = (&socket).read(&mut [0u8; 1]);
        assert_eq!(
            read.unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "non-blocking"
        );
    }
}
