//! A batch of the relay's commands: one pipeline per slot in a Redis Cluster (a pipeline
//! may not cross slots there), one pipeline in all with one Redis. The pipelines are sent
//! concurrently, and each command is answered with its own pipeline's outcome, so a slot
//! whose master is down fails only its own commands.

use std::collections::HashMap;

use redis::cluster_routing::Slot;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult};

use super::cluster::Conn;
use super::link::timed;

/// One pipeline per slot (one pipeline with one Redis); each command's answer is kept
/// (`keep`) or ignored.
pub struct Batch {
    cluster: bool,
    /// Per pipeline: the pipeline and the indexes (in the batch) of its kept answers.
    pipes: HashMap<Option<Slot>, (Pipeline, Vec<usize>)>,
    /// Per pipeline, per command: whether its answer is kept (to build it again).
    keeps: HashMap<Option<Slot>, Vec<bool>>,
    kept: usize,
    scripts: Vec<&'static redis::Script>,
}

impl Batch {
    pub fn new(conn: &Conn) -> Batch {
        Batch {
            cluster: conn.is_cluster(),
            pipes: HashMap::new(),
            keeps: HashMap::new(),
            kept: 0,
            scripts: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pipes.is_empty()
    }

    /// The pipeline for `key`'s slot. A new one starts by loading the batch's scripts with
    /// one Redis; in a cluster, where each slot would load them again, a script missing on
    /// a node (a new master) is loaded when its `NOSCRIPT` comes back (`run`).
    fn pipe(&mut self, key: &[u8], keep: bool) -> &mut (Pipeline, Vec<usize>) {
        let slot = self.cluster.then(|| Slot::for_key(key));
        self.keeps.entry(slot).or_default().push(keep);
        let cluster = self.cluster;
        let scripts = &self.scripts;
        self.pipes.entry(slot).or_insert_with(|| {
            let mut p = redis::pipe();
            if !cluster {
                for s in scripts {
                    p.load_script(s).ignore();
                }
            }
            (p, Vec::new())
        })
    }

    /// Declares a script the batch invokes (before the first `script`).
    pub fn uses(&mut self, script: &'static redis::Script) {
        self.scripts.push(script);
    }

    /// Adds a command on `key`.
    pub fn cmd(&mut self, key: &[u8], cmd: Cmd, keep: bool) {
        let index = self.kept;
        let (pipe, kept) = self.pipe(key, keep);
        pipe.add_command(cmd);
        if keep {
            kept.push(index);
            self.kept += 1;
        } else {
            pipe.ignore();
        }
    }

    /// Adds a script invocation on `key` (its first key), whose answer is kept.
    pub fn script(&mut self, key: &[u8], invocation: &redis::ScriptInvocation<'_>) {
        let index = self.kept;
        let (pipe, kept) = self.pipe(key, true);
        pipe.invoke_script(invocation);
        kept.push(index);
        self.kept += 1;
    }

    /// Sends every pipeline (concurrently in a cluster) and returns each kept answer in
    /// the order the commands were added, or its pipeline's error.
    pub async fn run<T: FromRedisValue + Send>(self, conn: &Conn) -> Vec<RedisResult<T>> {
        let scripts = self.scripts;
        let mut keeps = self.keeps;
        let runs = self.pipes.into_iter().map(|(slot, (pipe, kept))| {
            let mut conn = conn.clone();
            let keep = keeps.remove(&slot).unwrap_or_default();
            let scripts = &scripts;
            async move {
                let mut answer: RedisResult<Vec<T>> = timed(pipe.query_async(&mut conn)).await;
                let missing = |e: &redis::RedisError| {
                    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
                };
                if answer.as_ref().is_err_and(missing) {
                    // Nothing of the pipeline ran (its scripts are missing on the slot's
                    // node, a new master): again, loading them first, on that node.
                    let mut again = redis::pipe();
                    for s in scripts {
                        again.load_script(s).ignore();
                    }
                    for (cmd, keep) in pipe.cmd_iter().zip(keep) {
                        again.add_command(cmd.clone());
                        if !keep {
                            again.ignore();
                        }
                    }
                    answer = timed(again.query_async(&mut conn)).await;
                }
                (kept, answer)
            }
        });
        let done = futures_util::future::join_all(runs).await;
        let mut out: Vec<Option<RedisResult<T>>> = (0..self.kept).map(|_| None).collect();
        for (kept, answer) in done {
            match answer {
                Ok(values) => {
                    for (i, v) in kept.into_iter().zip(values) {
                        out[i] = Some(Ok(v));
                    }
                }
                Err(e) => {
                    for i in kept {
                        out[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        out.into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err((redis::ErrorKind::Client, "no answer in the pipeline").into())
                })
            })
            .collect()
    }

    /// Like `run`, for a batch whose answers are all ignored: the first error, if any.
    pub async fn exec(self, conn: &Conn) -> RedisResult<()> {
        let runs = self.pipes.into_values().map(|(pipe, _)| {
            let mut conn = conn.clone();
            async move { timed(pipe.query_async::<()>(&mut conn)).await }
        });
        futures_util::future::join_all(runs)
            .await
            .into_iter()
            .collect()
    }
}
