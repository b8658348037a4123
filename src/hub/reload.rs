//! Reloading without a restart: a list of named reload actions (the server API keys today),
//! run one after the other each time the process gets `SIGHUP`. A part of the hub that can
//! reload registers its action once ([`Reloads::register`]); an action that fails keeps
//! what it had, and says why in the log (and in its own metrics).
//!
//! The binary installs the `SIGHUP` handler ([`Sighup::install`]) before the hub starts, so
//! that a `SIGHUP` arriving while it starts does not kill the process (the default action),
//! and serves it ([`Sighup::serve`]) once the hub runs. In-process users (tests) call
//! [`Reloads::run`] themselves.

use std::sync::{Arc, Mutex};

/// One reload: Ok with a short summary for the log, or why it failed.
pub type Action = Box<dyn Fn() -> Result<String, String> + Send + Sync>;

/// The registered reload actions; clones share the same list.
#[derive(Clone, Default)]
pub struct Reloads(Arc<Mutex<Vec<(&'static str, Action)>>>);

impl Reloads {
    /// Adds `action`, named `what` in the log; it runs on every later [`Reloads::run`].
    pub fn register(
        &self,
        what: &'static str,
        action: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    ) {
        let mut actions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        actions.push((what, Box::new(action)));
    }

    /// Runs every action in the order registered; returns how many failed.
    pub fn run(&self) -> usize {
        let actions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut failed = 0;
        for (what, action) in actions.iter() {
            match action() {
                Ok(summary) => tracing::info!(what, %summary, "reloaded"),
                Err(error) => {
                    failed += 1;
                    tracing::error!(what, %error, "reload failed; keeping the previous one");
                }
            }
        }
        failed
    }
}

/// The `SIGHUP` handler, installed but not yet served.
pub struct Sighup(signal_hook::iterator::Signals);

impl Sighup {
    /// Catches `SIGHUP` from now on (queued until [`Sighup::serve`]).
    pub fn install() -> std::io::Result<Sighup> {
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]).map(Sighup)
    }

    /// Runs `reloads` on a thread of its own at each `SIGHUP`, for the life of the process.
    pub fn serve(mut self, reloads: Reloads) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("ringhub-reload".into())
            .spawn(move || {
                for _ in self.0.forever() {
                    tracing::info!("SIGHUP: reloading");
                    reloads.run();
                }
            })
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_action_and_counts_failures() {
        let reloads = Reloads::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = runs.clone();
        reloads.register("first", move || {
            seen.fetch_add(1, Ordering::Relaxed);
            Ok("fine".into())
        });
        reloads.register("second", || Err("bad file".into()));
        assert_eq!(reloads.clone().run(), 1);
        assert_eq!(reloads.run(), 1);
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    }
}
