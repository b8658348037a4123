//! Per-connection deadlines on the shard's timing wheel: what each timer is for, how it is
//! scheduled, and what happens when it fires. Cancellation is lazy: a timer carries its
//! connection's id and is ignored when the connection (or its state) moved on.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::Stage;
use super::core::Core;
use super::state::{Timer, TimerKind};
use crate::protocol;

/// An empty, final, unmasked ping frame: the same bytes for every connection.
const PING: &[u8] = &[0x89, 0x00];

/// The farthest a timer is scheduled: a century, well inside `Instant`'s range.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Core {
    /// Schedules `expiring` and the expiry close for the connection's current token.
    pub(super) fn schedule_expiry(&mut self, key: usize) {
        let Some(identity) = self.conns[key].phase.open().map(|s| &s.identity) else {
            return;
        };
        // In milliseconds: whole seconds would lose up to one of the refresh window.
        let now = crate::auth::unix_ms();
        let exp = identity.expires_at.saturating_mul(1000);
        let window = self.shared.config.refresh_window.as_millis() as u64;
        let warn_at = exp.saturating_sub(window).max(now);
        self.schedule(
            key,
            Duration::from_millis(warn_at - now),
            TimerKind::Expiring,
        );
        self.schedule(
            key,
            Duration::from_millis(exp.saturating_sub(now)),
            TimerKind::Expiry,
        );
    }

    /// Schedules a timer for a connection.
    pub(super) fn schedule(&mut self, key: usize, after: Duration, kind: TimerKind) {
        let conn = self.conns[key].id;
        // A token's `exp` may lie centuries ahead: `Instant + Duration` would overflow.
        let at = Instant::now() + after.min(FAR);
        self.timers.schedule(at, Timer { key, conn, kind });
    }

    pub fn on_timer(&mut self, t: Timer) {
        match t.kind {
            TimerKind::Gather(query) => return self.presence_timeout(query),
            TimerKind::StreamsRetry => return self.retry_stalled(),
            _ => {}
        }
        let Some(conn) = self.conns.get_mut(t.key) else {
            return;
        };
        if conn.id != t.conn || conn.done {
            return;
        }
        let shared = self.shared.clone();
        let config = &shared.config;
        let now = Instant::now();
        match (t.kind, conn.stage()) {
            (TimerKind::Handshake, Stage::Http) => {
                conn.done = true;
                conn.signal();
            }
            (TimerKind::Auth, Stage::AwaitAuth) => {
                crate::metrics::local(|m| m.auth_failure("timeout"));
                self.close(t.key, 4001, "authentication timeout")
            }
            (TimerKind::Linger, Stage::Closing) => {
                conn.done = true;
                conn.signal();
            }
            (TimerKind::Ping, Stage::Open) => {
                let ping = config.ping_interval;
                self.send(t.key, Bytes::from_static(PING));
                self.schedule(t.key, ping, TimerKind::Ping);
            }
            (TimerKind::Liveness, Stage::Open) => {
                let limit = config.ping_interval + config.pong_timeout;
                let silent = now.saturating_duration_since(conn.last_seen);
                if silent >= limit {
                    self.close(t.key, 1011, "ping timeout");
                } else {
                    self.schedule(t.key, limit - silent, TimerKind::Liveness);
                }
            }
            (TimerKind::Expiring | TimerKind::Expiry, Stage::Open) => {
                let exp_s = conn.phase.open().map_or(0, |s| s.identity.expires_at);
                let exp = exp_s.saturating_mul(1000);
                let now = crate::auth::unix_ms();
                // A timer left over from before a refresh finds a later `exp`: ignore it.
                // (Timers fire at or a tick after their time; `SLACK` covers the tick.)
                const SLACK: u64 = 50;
                let window = config.refresh_window.as_millis() as u64;
                if t.kind == TimerKind::Expiry && exp <= now + SLACK {
                    self.close(t.key, 4001, "token expired");
                } else if t.kind == TimerKind::Expiring && exp <= now + window + SLACK {
                    self.send(t.key, protocol::expiring(exp_s));
                }
            }
            _ => {}
        }
    }
}
