//! The history of the channels this shard sequences (one instance, no Redis): per channel
//! the last offset given, the kept publications (at most `history_size`, none older than
//! `history_ttl`) and the epoch. A log dropped while idle and made again has another epoch,
//! so offsets from before cannot be mistaken for the new ones.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Config;
use crate::protocol::{self, Publication, Since};

/// Logs are swept every this many history operations on a shard.
const SWEEP_EVERY: u64 = 1024;
/// An empty log untouched this long is dropped by the sweep.
const IDLE: Duration = Duration::from_secs(600);

pub struct Logs {
    logs: HashMap<Arc<str>, Log>,
    /// History operations so far (the logs are swept every `SWEEP_EVERY`).
    ops: u64,
    /// This process's epoch, the prefix of every log's.
    epoch: Arc<str>,
}

struct Log {
    top: u64,
    entries: VecDeque<Stored>,
    epoch: Arc<str>,
    used: Instant,
}

/// One kept publication.
struct Stored {
    offset: u64,
    ts: u64,
    at: Instant,
    from: Option<Arc<str>>,
    data: Box<str>,
    frame: Bytes,
}

/// Where a channel stands for a subscriber, and what it missed.
pub struct Recovery {
    pub epoch: Arc<str>,
    pub top: u64,
    /// None without `since`; else whether everything after it was still kept.
    pub recovered: Option<bool>,
    /// The `message` frames after `since` with their offsets, oldest first (when recovered).
    pub frames: Vec<(u64, Bytes)>,
}

impl Log {
    /// Empty, and unused for `idle`: the sweep drops it.
    fn dead(&self, now: Instant, idle: Duration) -> bool {
        self.entries.is_empty() && now.duration_since(self.used) > idle
    }

    /// Drops what is over `size` or older than `ttl`.
    fn trim(&mut self, size: usize, ttl: Option<Duration>, now: Instant) {
        while self.entries.len() > size {
            self.entries.pop_front();
        }
        if let Some(ttl) = ttl {
            while self
                .entries
                .front()
                .is_some_and(|e| now.duration_since(e.at) > ttl)
            {
                self.entries.pop_front();
            }
        }
    }
}

impl Logs {
    pub fn new(epoch: Arc<str>) -> Logs {
        Logs {
            logs: HashMap::new(),
            ops: 0,
            epoch,
        }
    }

    /// The channel's log (made, with a new epoch, when missing), trimmed and marked used.
    /// Every `SWEEP_EVERY` calls, logs that are empty and idle are dropped first.
    fn log(&mut self, config: &Config, channel: &Arc<str>, now: Instant) -> &mut Log {
        self.ops += 1;
        if self.ops % SWEEP_EVERY == 0 {
            self.sweep(config, now);
        }
        let prefix = &self.epoch;
        let log = self.logs.entry(channel.clone()).or_insert_with(|| Log {
            top: 0,
            entries: VecDeque::new(),
            epoch: format!("{prefix}{:06x}", rand::random::<u32>() & 0xFF_FFFF).into(),
            used: now,
        });
        let ns = config.namespace(channel);
        log.used = now;
        log.trim(ns.history_size, ns.history_ttl, now);
        log
    }

    /// Gives a publication the channel's next offset and keeps it; its `message` frame
    /// (with the offset) and the offset.
    pub fn append(
        &mut self,
        config: &Config,
        channel: &Arc<str>,
        data: &str,
        from: Option<&str>,
        now: Instant,
    ) -> (u64, Bytes) {
        let log = self.log(config, channel, now);
        log.top += 1;
        let offset = log.top;
        let frame = protocol::message_at(channel, data, from, offset);
        log.entries.push_back(Stored {
            offset,
            ts: crate::auth::unix_ms(),
            at: now,
            from: from.map(Into::into),
            data: data.into(),
            frame: frame.clone(),
        });
        let ns = config.namespace(channel);
        log.trim(ns.history_size, ns.history_ttl, now);
        (offset, frame)
    }

    /// Where the channel stands, and what a subscriber missed since `since`: everything
    /// after it, when all of that is still kept in the same epoch.
    pub fn recover(
        &mut self,
        config: &Config,
        channel: &Arc<str>,
        since: Option<Since>,
        now: Instant,
    ) -> Recovery {
        let log = self.log(config, channel, now);
        let (top, epoch) = (log.top, log.epoch.clone());
        let (recovered, frames) = match since {
            None => (None, Vec::new()),
            Some(s) => {
                let first = log.entries.front().map_or(top + 1, |e| e.offset);
                let same_epoch = s.epoch() == Some(&*epoch);
                // Everything after `s` must still be kept: offsets s+1 ..= top.
                if same_epoch && s.offset() <= top && s.offset() + 1 >= first {
                    let frames = log
                        .entries
                        .iter()
                        .filter(|e| e.offset > s.offset())
                        .map(|e| (e.offset, e.frame.clone()))
                        .collect();
                    (Some(true), frames)
                } else {
                    (Some(false), Vec::new())
                }
            }
        };
        Recovery {
            epoch,
            top,
            recovered,
            frames,
        }
    }

    /// Kept publications after `since`, at most `limit`: the epoch and the JSON array.
    pub fn read(
        &mut self,
        config: &Config,
        channel: &Arc<str>,
        since: Option<u64>,
        limit: usize,
        now: Instant,
    ) -> (Arc<str>, String) {
        let log = self.log(config, channel, now);
        let after = since.unwrap_or(0);
        let publications = protocol::publications_json(
            log.entries
                .iter()
                .filter(|e| e.offset > after)
                .take(limit)
                .map(|e| Publication {
                    offset: e.offset,
                    from: e.from.as_deref(),
                    ts: e.ts,
                    data: &e.data,
                }),
        );
        (log.epoch.clone(), publications)
    }

    /// Trims every log by age and drops those left empty and unused for `IDLE`.
    fn sweep(&mut self, config: &Config, now: Instant) {
        self.logs.retain(|channel, log| {
            let ns = config.namespace(channel);
            log.trim(ns.history_size, ns.history_ttl, now);
            !log.dead(now, IDLE)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Namespace;

    fn config(size: usize, ttl: Option<Duration>) -> Config {
        let mut c = Config::default();
        let ns = Namespace {
            history_size: size,
            history_ttl: ttl,
            ..Default::default()
        };
        c.namespaces.insert("h".into(), ns);
        c
    }

    fn since(offset: u64, epoch: &str) -> Since {
        serde_json::from_str(&format!(r#"{{"offset":{offset},"epoch":"{epoch}"}}"#)).unwrap()
    }

    #[test]
    fn offsets_follow_each_other_and_the_size_bounds_what_is_kept() {
        let c = config(3, None);
        let mut logs = Logs::new("e".into());
        let h: Arc<str> = "h:1".into();
        let now = Instant::now();
        for i in 1..=5 {
            assert_eq!(logs.append(&c, &h, "1", None, now).0, i);
        }
        let r = logs.recover(&c, &h, None, now);
        assert_eq!((r.top, r.recovered), (5, None));
        assert!(r.epoch.starts_with('e'));
        let r = logs.recover(&c, &h, Some(since(2, &r.epoch)), now);
        assert_eq!(
            (r.recovered, r.frames.len()),
            (Some(true), 3),
            "3, 4 and 5 are kept"
        );
        let r = logs.recover(&c, &h, Some(since(1, &r.epoch)), now);
        assert_eq!(r.recovered, Some(false), "2 is gone");
        let r = logs.recover(&c, &h, Some(since(5, "other")), now);
        assert_eq!(r.recovered, Some(false), "another epoch");
        let (_, json) = logs.read(&c, &h, Some(3), 1, now);
        let read: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(read[0]["offset"], 4);
        assert_eq!(read.as_array().unwrap().len(), 1, "limit");
    }

    #[test]
    fn old_publications_are_trimmed_and_the_sequence_goes_on() {
        let c = config(10, Some(Duration::from_secs(1)));
        let mut logs = Logs::new("e".into());
        let h: Arc<str> = "h:1".into();
        let start = Instant::now();
        logs.append(&c, &h, "1", None, start);
        logs.append(&c, &h, "2", None, start);
        let later = start + Duration::from_secs(2);
        let r = logs.recover(&c, &h, None, later);
        let epoch = r.epoch.clone();
        let r = logs.recover(&c, &h, Some(since(0, &epoch)), later);
        assert_eq!((r.top, r.recovered), (2, Some(false)), "both expired");
        assert_eq!(logs.append(&c, &h, "3", None, later).0, 3);
    }

    #[test]
    fn only_empty_idle_logs_are_dead() {
        let start = Instant::now();
        let log = |n: usize| Log {
            top: n as u64,
            entries: (1..=n as u64)
                .map(|offset| Stored {
                    offset,
                    ts: 0,
                    at: start,
                    from: None,
                    data: "1".into(),
                    frame: Bytes::new(),
                })
                .collect(),
            epoch: "e".into(),
            used: start,
        };
        let idle = Duration::from_secs(10);
        let later = start + Duration::from_secs(11);
        assert!(!log(1).dead(later, idle), "kept publications stay");
        assert!(
            !log(0).dead(start + Duration::from_secs(5), idle),
            "recently used"
        );
        assert!(log(0).dead(later, idle));
    }
}
