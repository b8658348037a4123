//! A shard thread's life as the hub sees it: its word to `Hub::start` that it serves (or why
//! not), its place in `Shared::serving`, and its death, when it stops serving unasked.

use std::cell::Cell;
use std::io;
use std::net::{Shutdown, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::shared::Shared;

/// What the hub keeps of its shard threads beyond `Shared`: whether it told them to stop,
/// and the ones that ended without being told.
pub(super) struct Watch {
    pub(super) stopping: AtomicBool,
    died_tx: crossbeam_channel::Sender<usize>,
    pub(super) died_rx: crossbeam_channel::Receiver<usize>,
}

impl Watch {
    pub(super) fn new() -> Watch {
        let (died_tx, died_rx) = crossbeam_channel::unbounded();
        Watch {
            stopping: AtomicBool::new(false),
            died_tx,
            died_rx,
        }
    }
}

/// A shard's word to `Hub::start`.
pub(super) enum Report {
    Serving,
    /// Its runtime could not be built (io_uring refused, say).
    NoRuntime {
        shard: usize,
        source: io::Error,
    },
    Failed {
        shard: usize,
        source: io::Error,
    },
}

/// A shard thread's life as the hub sees it, owned by the thread so that its end, a panic
/// included, is seen: it reports the start exactly once, counts the shard in
/// `Shared::serving` while it serves, and when it stops serving without being told to, logs
/// an error and tells `Hub::shard_died`. When the thread ends it also takes the shard's
/// listener out of the SO_REUSEPORT group.
pub(super) struct Life {
    index: usize,
    shared: Arc<Shared>,
    watch: Arc<Watch>,
    report: Cell<Option<Sender<Report>>>,
    serving: Cell<bool>,
    /// Second descriptors of the shard's listeners. monoio drops only the runnable tasks
    /// with a runtime and leaks the waiting ones, the accept loop and its listener among
    /// them; a listener left open would keep taking its share of new connections for nobody.
    listeners: Vec<TcpListener>,
}

impl Life {
    pub(super) fn new(
        index: usize,
        shared: Arc<Shared>,
        watch: Arc<Watch>,
        report: Sender<Report>,
        listeners: Vec<TcpListener>,
    ) -> Life {
        Life {
            index,
            shared,
            watch,
            report: Cell::new(Some(report)),
            serving: Cell::new(false),
            listeners,
        }
    }

    fn tell(&self, report: Report) {
        if let Some(tx) = self.report.take() {
            let _ = tx.send(report);
        }
    }

    /// The runtime is built; the listener is registered, or `result` says why not.
    pub(super) fn started(&self, result: io::Result<()>) {
        match result {
            Ok(()) => {
                self.shared.serving.fetch_add(1, Ordering::AcqRel);
                self.serving.set(true);
                self.tell(Report::Serving);
            }
            Err(source) => self.tell(Report::Failed {
                shard: self.index,
                source,
            }),
        }
    }

    /// `shard::run` returned.
    pub(super) fn ended(&self, result: io::Result<()>) {
        let Err(source) = result else { return };
        match self.report.take() {
            Some(tx) => {
                let _ = tx.send(Report::NoRuntime {
                    shard: self.index,
                    source,
                });
            }
            None => tracing::error!(shard = self.index, error = %source, "shard runtime failed"),
        }
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        let panicked = std::thread::panicking();
        // On Linux, shutting a listening socket down closes it (pending connections are
        // reset), which takes it out of the group whatever descriptors stay open.
        for listener in &self.listeners {
            let _ = socket2::SockRef::from(listener).shutdown(Shutdown::Read);
        }
        self.tell(Report::Failed {
            shard: self.index,
            source: io::Error::other("the shard thread ended before serving"),
        });
        if !self.serving.get() {
            return;
        }
        self.shared.serving.fetch_sub(1, Ordering::AcqRel);
        if !self.watch.stopping.load(Ordering::Acquire) {
            tracing::error!(
                shard = self.index,
                panicked,
                "shard stopped serving without being told to; /ready answers 503"
            );
            let _ = self.watch.died_tx.send(self.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Verifier;
    use crate::config::Config;

    fn life() -> (
        Life,
        Arc<Shared>,
        Arc<Watch>,
        std::sync::mpsc::Receiver<Report>,
    ) {
        let config = Config::default();
        let verifier = Verifier::new(&config, b"x").unwrap();
        let shared = Shared::new(config, verifier, "i".into(), 1);
        let watch = Arc::new(Watch::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let life = Life::new(0, shared.clone(), watch.clone(), tx, vec![listener]);
        (life, shared, watch, rx)
    }

    #[test]
    fn a_panic_while_serving_is_a_death() {
        let (life, shared, watch, rx) = life();
        let thread = std::thread::spawn(move || {
            life.started(Ok(()));
            panic!("a shard bug");
        });
        assert!(thread.join().is_err());
        assert!(matches!(rx.recv(), Ok(Report::Serving)));
        assert_eq!(shared.serving.load(Ordering::Acquire), 0);
        assert_eq!(watch.died_rx.try_recv(), Ok(0));
    }

    #[test]
    fn a_panic_while_starting_fails_the_start() {
        let (life, shared, watch, rx) = life();
        let thread = std::thread::spawn(move || {
            let _life = life;
            panic!("a shard bug");
        });
        assert!(thread.join().is_err());
        assert!(matches!(rx.recv(), Ok(Report::Failed { shard: 0, .. })));
        assert_eq!(shared.serving.load(Ordering::Acquire), 0);
        assert!(watch.died_rx.is_empty(), "it never served");
    }

    #[test]
    fn a_stop_asked_for_is_no_death() {
        let (life, shared, watch, _rx) = life();
        life.started(Ok(()));
        assert_eq!(shared.serving.load(Ordering::Acquire), 1);
        watch.stopping.store(true, Ordering::Release);
        life.ended(Ok(()));
        drop(life);
        assert_eq!(shared.serving.load(Ordering::Acquire), 0);
        assert!(watch.died_rx.is_empty());
    }
}
