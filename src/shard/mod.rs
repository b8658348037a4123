//! A shard: one thread, one monoio runtime, one listener, and every connection of the users
//! that hash to it. Nothing here is `Send` or locked; other threads reach a shard only
//! through its inbox.
//!
//! Tasks on a shard: the inbox loop (the runtime's main future), the accept loop, the
//! timing-wheel ticker, the yield pump (`yield_now.rs`), and the reactor, which serves the
//! readiness of every connection (a connection has no task of its own).

mod backend;
mod chat;
mod cluster;
pub mod conn;
mod connect;
mod core;
mod deltas;
mod dispatch;
mod fanout;
mod frames;
mod gaps;
mod history;
mod http_phase;
mod outq;
mod pace;
mod presence;
mod proxy;
mod reactor;
mod requests;
mod rpc;
mod state;
mod stop;
mod timers;
mod tls;
mod variants;
pub mod wheel;
mod yield_now;

use std::cell::RefCell;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

pub use self::core::Core;
use crate::config::Driver;
use crate::shared::Shared;
pub use requests::MAX_MALFORMED;
use yield_now::YieldNow;

/// Size of the per-shard read buffer every connection reads into.
const READ_BUF: usize = 64 * 1024;
/// Connections accepted in a row before the other tasks get a turn.
const ACCEPT_BURST: usize = 128;

pub struct Shard {
    pub core: RefCell<Core>,
    /// Shared by all connections of the shard: an idle connection holds no read buffer.
    pub readbuf: RefCell<Box<[u8]>>,
    /// Where TLS connections' reads are decrypted to (empty without a TLS listener).
    pub plainbuf: RefCell<Box<[u8]>>,
    /// The readiness of every connection of the shard (`reactor`).
    pub epoll: RefCell<crate::sys::epoll::Epoll>,
}

/// A shard's listeners: its share of the plaintext and of the TLS address (SO_REUSEPORT),
/// at least one of them.
pub struct Listeners {
    pub plain: Option<TcpListener>,
    pub tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
}

impl Listeners {
    /// Second descriptors of every listener (the hub shuts them down if the shard dies).
    pub fn try_clone_all(&self) -> std::io::Result<Vec<TcpListener>> {
        let tls = self.tls.as_ref().map(|(l, _)| l);
        self.plain
            .iter()
            .chain(tls)
            .map(|l| l.try_clone())
            .collect()
    }
}

/// The driver a shard ended up on, for the start-up log.
pub fn driver_name(driver: Driver) -> &'static str {
    match resolve(driver) {
        Driver::Epoll => "epoll",
        _ => "io_uring",
    }
}

fn resolve(driver: Driver) -> Driver {
    match driver {
        Driver::Auto if monoio::utils::detect_uring() => Driver::IoUring,
        Driver::Auto => Driver::Epoll,
        d => d,
    }
}

/// Runs shard `index` on the current thread until it is told to stop. `started` hears once
/// the runtime is built and the listeners registered (or why a listener could not be); an
/// error building the runtime is returned without it.
pub fn run(
    shared: Arc<Shared>,
    index: usize,
    listeners: Listeners,
    driver: Driver,
    started: impl FnOnce(std::io::Result<()>),
) -> std::io::Result<()> {
    let body = move || serve(shared, index, listeners, started);
    match resolve(driver) {
        Driver::Epoll => RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()?
            .block_on(body()),
        _ => {
            // Cooperative task running (Linux 5.19+): a completion for this shard, e.g. a
            // socket becoming readable because a client wrote, no longer interrupts the
            // shard's thread with an IPI; the shard picks it up at its next system call,
            // which is never far off. This costs the side that wakes the shard (on loopback,
            // the client) noticeably less. Older kernels refuse the flag: run without it.
            let uring = |coop: bool| {
                let mut setup = io_uring::IoUring::builder();
                if coop {
                    setup.setup_coop_taskrun().setup_taskrun_flag();
                }
                RuntimeBuilder::<IoUringDriver>::new()
                    .with_entries(4096)
                    .uring_builder(setup)
                    .enable_timer()
                    .build()
            };
            uring(true).or_else(|_| uring(false))?.block_on(body())
        }
    };
    Ok(())
}

async fn serve(
    shared: Arc<Shared>,
    index: usize,
    listeners: Listeners,
    started: impl FnOnce(std::io::Result<()>),
) {
    crate::metrics::bind_local(shared.metrics.shards[index].clone());
    let plain_len = if listeners.tls.is_some() { READ_BUF } else { 0 };
    let epoll = match crate::sys::epoll::Epoll::new(reactor::BATCH) {
        Ok(epoll) => epoll,
        Err(e) => return started(Err(e)),
    };
    let shard = Rc::new(Shard {
        core: RefCell::new(Core::new(shared.clone(), index)),
        readbuf: RefCell::new(vec![0u8; READ_BUF].into_boxed_slice()),
        plainbuf: RefCell::new(vec![0u8; plain_len].into_boxed_slice()),
        epoll: RefCell::new(epoll),
    });
    // The pacing timer (`pace`), when `write_interval` is set, in the same set.
    let timer = shard.core.borrow_mut().pace.start_timer();
    let watched = timer.and_then(|fd| match fd {
        Some(fd) => {
            let epoll = shard.epoll.borrow();
            epoll.add(fd, pace::TIMER, crate::sys::epoll::Interest::Read)
        }
        None => Ok(()),
    });
    if let Err(e) = watched {
        return started(Err(e));
    }
    let mut accepting = Vec::new();
    let (tls_listener, tls) = listeners.tls.unzip();
    for (listener, tls) in [(listeners.plain, None), (tls_listener, tls)] {
        let Some(listener) = listener else { continue };
        // A second descriptor of the same (non-blocking) listener, registered with the
        // runtime for readiness only; connections are taken from `listener` itself, in bursts.
        match listener
            .try_clone()
            .and_then(monoio::net::TcpListener::from_std)
        {
            Ok(ready) => accepting.push((listener, ready, tls)),
            Err(e) => return started(Err(e)),
        }
    }
    started(Ok(()));
    for (listener, ready, tls) in accepting {
        monoio::spawn(accept_loop(shard.clone(), listener, ready, tls));
    }
    monoio::spawn(yield_now::pump());
    monoio::spawn(reactor::run(shard.clone()));
    monoio::spawn(ticker(shard.clone()));
    dispatch::inbox_loop(shard).await;
}

/// Waits until the listener is readable, then takes every connection already queued (up to
/// [`ACCEPT_BURST`]) with plain non-blocking `accept4` calls. One io_uring accept per pass
/// of the event loop took one connection per pass: under a connect storm the backlog
/// drained at the pace of the loop, and the connections at its end waited for it.
/// `tls`: the listener serves TLS with this configuration.
async fn accept_loop(
    shard: Rc<Shard>,
    listener: TcpListener,
    ready: monoio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    'outer: loop {
        let readable = monoio::select! {
            r = ready.readable(false) => Some(r),
            _ = DrainSignal(&shard) => None,
        };
        match readable {
            None => break,
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(shard = shard.core.borrow().index, error = %e, "listener failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        for _ in 0..ACCEPT_BURST {
            match accept(&listener) {
                Ok(Some((socket, peer))) => start(&shard, socket, peer, tls.as_ref()),
                Ok(None) => {} // not an IP peer: nothing a hub can serve
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue 'outer,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!(shard = shard.core.borrow().index, error = %e, "accept failed");
                    monoio::time::sleep(Duration::from_millis(50)).await;
                    continue 'outer;
                }
            }
        }
        // A full burst: let the connections just accepted (and everything else) have a turn.
        YieldNow(false).await;
    }
    tracing::debug!(shard = shard.core.borrow().index, "stopped accepting");
}

/// Takes one queued connection: `accept4` makes it non-blocking in the same call (the
/// hub's reads and writes pass MSG_DONTWAIT, but rustls's go through them too), and it
/// comes with TCP_NODELAY from the listener (`hub::bind_all`): one system call per
/// connection where `accept`, `ioctl(FIONBIO)` and `setsockopt` were three.
pub(crate) fn accept(listener: &TcpListener) -> std::io::Result<Option<(TcpStream, SocketAddr)>> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let (socket, peer) = socket2::SockRef::from(listener).accept4(flags)?;
    Ok(peer.as_socket().map(|peer| (socket.into(), peer)))
}

/// A connection just accepted: it gets its record on this shard and its place in the
/// shard's epoll set.
fn start(
    shard: &Rc<Shard>,
    socket: TcpStream,
    peer: SocketAddr,
    tls: Option<&Arc<rustls::ServerConfig>>,
) {
    let session = match tls.map(|config| rustls::ServerConnection::new(config.clone())) {
        None => None,
        Some(Ok(session)) => Some(Box::new(session)),
        Some(Err(e)) => {
            tracing::warn!(shard = shard.core.borrow().index, error = %e, "cannot start a TLS session");
            return;
        }
    };
    let key = shard.core.borrow_mut().accepted(socket, peer);
    shard.core.borrow_mut().conns[key].tls = session;
    reactor::register(shard, key);
}

/// Drives the timing wheel: one tick task per shard. It sleeps until the next slot that
/// holds anything (not every tick), and is woken early when a sooner timer is scheduled.
async fn ticker(shard: Rc<Shard>) {
    let mut due = Vec::new();
    loop {
        let next = shard.core.borrow_mut().timers.plan();
        match next {
            None => TickerKick(&shard).await,
            Some(at) => {
                let kicked = monoio::select! {
                    _ = monoio::time::sleep_until(at.into()) => false,
                    _ = TickerKick(&shard) => true,
                };
                if kicked {
                    continue;
                }
            }
        }
        let mut core = shard.core.borrow_mut();
        core.timers.advance(Instant::now(), &mut due);
        for t in due.drain(..) {
            core.on_timer(t);
        }
        core.flush_paced();
    }
}

/// Resolves when `schedule` asks the ticker to look at the wheel again.
struct TickerKick<'a>(&'a Shard);

impl Future for TickerKick<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.core.borrow_mut().timers.poll_kick(cx) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

struct DrainSignal<'a>(&'a Shard);

impl Future for DrainSignal<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut core = self.0.core.borrow_mut();
        if core.draining {
            Poll::Ready(())
        } else {
            core.accept_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
