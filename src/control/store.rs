//! Revocation rules kept in Redis (the hash `<prefix>revoked`, one field per jti or user),
//! and mutes (the hash `<prefix>mutes`, one field per user and scope), so that they survive
//! a restart. Without Redis they live only in the shards.
//!
//! Redis being down never blocks the API: a revocation still takes effect in this process,
//! and the answer says it was not persisted.

use redis::AsyncCommands;

use crate::mutes::Mute;
use crate::relay::{timed, Conn, Target};
use crate::revocation::Rule;

pub struct Store {
    target: Target,
    key: String,
    mutes_key: String,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl Store {
    pub fn new(target: Target, prefix: &str) -> Store {
        Store {
            target,
            key: format!("{prefix}revoked"),
            mutes_key: format!("{prefix}mutes"),
            conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn connection(&self) -> redis::RedisResult<Conn> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self.target.connect().await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// `result`, forgetting the connection when it failed, so the next call dials again.
    async fn checked<T>(&self, result: redis::RedisResult<T>) -> redis::RedisResult<T> {
        if result.is_err() {
            *self.conn.lock().await = None;
        }
        result
    }

    /// The rules still in force; expired ones are deleted on the way.
    pub async fn load(&self, now: u64) -> redis::RedisResult<Vec<Rule>> {
        let result = async {
            let mut c = self.connection().await?;
            let all: Vec<(String, String)> = timed(c.hgetall(&self.key)).await?;
            let mut live = Vec::new();
            let mut dead = Vec::new();
            for (field, value) in all {
                match serde_json::from_str::<Rule>(&value) {
                    Ok(rule) if rule.until() > now => live.push(rule),
                    Ok(_) => dead.push(field),
                    Err(e) => {
                        tracing::warn!(field, error = %e, "ignoring a malformed stored revocation")
                    }
                }
            }
            if !dead.is_empty() {
                let _: () = timed(c.hdel(&self.key, dead)).await?;
            }
            Ok(live)
        }
        .await;
        self.checked(result).await
    }

    /// Writes one rule.
    pub async fn save(&self, rule: &Rule) -> redis::RedisResult<()> {
        let result = async {
            let mut c = self.connection().await?;
            let value = serde_json::to_string(rule).expect("rules serialize");
            timed(c.hset::<_, _, _, ()>(&self.key, rule.key(), value)).await
        }
        .await;
        self.checked(result).await
    }

    /// The mutes in force; ended ones are deleted on the way.
    pub async fn load_mutes(&self, now: u64) -> redis::RedisResult<Vec<Mute>> {
        let result = async {
            let mut c = self.connection().await?;
            let all: Vec<(String, String)> = timed(c.hgetall(&self.mutes_key)).await?;
            let mut live = Vec::new();
            let mut dead = Vec::new();
            for (field, value) in all {
                match serde_json::from_str::<Mute>(&value) {
                    Ok(m) if m.valid() && m.in_force(now) => live.push(m),
                    _ => dead.push(field),
                }
            }
            if !dead.is_empty() {
                let _: () = timed(c.hdel(&self.mutes_key, dead)).await?;
            }
            Ok(live)
        }
        .await;
        self.checked(result).await
    }

    /// Writes a mute (`Some`) or deletes the one of `key` (`None`).
    pub async fn save_mute(&self, key: &str, mute: Option<&Mute>) -> redis::RedisResult<()> {
        let result = async {
            let mut c = self.connection().await?;
            match mute {
                Some(m) => {
                    let value = serde_json::to_string(m).expect("mutes serialize");
                    timed(c.hset::<_, _, _, ()>(&self.mutes_key, key, value)).await
                }
                None => timed(c.hdel::<_, _, ()>(&self.mutes_key, key)).await,
            }
        }
        .await;
        self.checked(result).await
    }
}
