//! The end of a shard: draining (no more accepts, `reconnect` with jitter, 1001) and
//! stopping (flush what can be flushed, forget every connection).

use rand::Rng;

use super::conn::Stage;
use super::core::Core;
use crate::protocol;

impl Core {
    /// Draining: no more accepts; every connection gets `reconnect` and a 1001 close.
    pub fn drain(&mut self, jitter_ms: u64) {
        self.draining = true;
        if let Some(w) = self.accept_waker.take() {
            w.wake();
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        let mut rng = rand::rng();
        for key in keys {
            match self.conns[key].stage() {
                Stage::Open | Stage::AwaitAuth | Stage::Echo => {
                    if self.conns[key].stage() == Stage::Open {
                        let after = rng.random_range(0..=jitter_ms);
                        self.send(key, protocol::reconnect(after));
                    }
                    self.close(key, 1001, "draining");
                }
                Stage::Http => {
                    let body =
                        crate::ws::http::refusal(503, "unavailable", "the hub is draining", "");
                    self.answer_http(key, body);
                }
                Stage::Closing => {}
            }
        }
        self.flush_dirty();
    }

    /// The shard is leaving its runtime: flush what can be flushed; tasks are dropped with it.
    pub fn stop_all(&mut self) {
        self.flush_dirty();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.remove(key);
        }
    }
}
