//! The token store (`token_store = "redis"`, docs/proxies.md): opaque tokens looked up in
//! Redis by their SHA-256, on the control thread. A shard queues a lookup
//! (`route::token_queue`) without waiting and hears the answer through its inbox
//! (`ConnectDone`, with the digest so the shard caches what was found).
//!
//! The key is `<token_store_prefix><sha256 hex>`, a JSON object `{sub, exp, channels?,
//! publish?, info?, iat?}` (`auth::opaque::from_record`). A missing, expired or malformed
//! key refuses the client (4001); Redis failing to answer closes it with 1013.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::auth::opaque::{self, Refusal};
use crate::relay::timed;
use crate::route::inbox::ShardMsg;
use crate::route::token_queue::Lookup;
use crate::shared::Shared;

/// Lookups sent to Redis at once, at most (one multiplexed connection pipelines them).
const IN_FLIGHT: usize = 256;

/// The control thread's loop: one lookup per queued token.
pub async fn run(shared: Arc<Shared>) {
    let Some(tokens) = shared.tokens.as_ref() else {
        return;
    };
    let Some(mut rx) = tokens.take_receiver() else {
        return;
    };
    let store = shared
        .config
        .redis_url
        .as_deref()
        .map(redis::Client::open)
        .and_then(|c| {
            c.map_err(|e| tracing::error!(error = %e, "token store: invalid redis_url"))
                .ok()
        });
    let conn: Arc<tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>> =
        Default::default();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    while let Some(lookup) = rx.recv().await {
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let (shared, store, conn) = (shared.clone(), store.clone(), conn.clone());
        tokio::spawn(async move {
            let result = match &store {
                Some(client) => look_up(&shared, client, &conn, &lookup.digest).await,
                None => Err(Refusal::Unavailable("the token store is not set up".into())),
            };
            drop(permit);
            answer(&shared, lookup, result);
        });
    }
}

/// Reads the token's key: its identity, or why not.
async fn look_up(
    shared: &Shared,
    client: &redis::Client,
    slot: &tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    digest: &[u8; 32],
) -> Result<crate::auth::Identity, Refusal> {
    let key = format!(
        "{}{}",
        shared.config.token_store_prefix,
        hex::encode(digest)
    );
    let unavailable = |e: redis::RedisError| {
        tracing::warn!(error = %e, "token store: Redis did not answer");
        Refusal::Unavailable("the token store is unavailable; retry".into())
    };
    let mut c = {
        let mut slot = slot.lock().await;
        match slot.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = timed(client.get_multiplexed_async_connection())
                    .await
                    .map_err(unavailable)?;
                *slot = Some(c.clone());
                c
            }
        }
    };
    let value: Option<Vec<u8>> = match timed(redis::cmd("GET").arg(&key).query_async(&mut c)).await
    {
        Ok(v) => v,
        Err(e) => {
            // Dial again next time.
            *slot.lock().await = None;
            return Err(unavailable(e));
        }
    };
    let Some(value) = value else {
        return Err(Refusal::Unauthorized("invalid or expired token".into()));
    };
    opaque::from_record(&value, crate::auth::unix_now()).map_err(|e| {
        tracing::info!(reason = e.reason(), "token store: token refused");
        Refusal::Unauthorized("invalid or expired token".into())
    })
}

/// Counts the answer and sends it to the connection's shard (unless it is gone).
fn answer(shared: &Shared, lookup: Lookup, result: Result<crate::auth::Identity, Refusal>) {
    if let Some(tokens) = shared.tokens.as_ref() {
        let counter = match &result {
            Ok(_) => &tokens.stats.found,
            Err(Refusal::Unavailable(_)) => &tokens.stats.failed,
            Err(_) => &tokens.stats.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tokens.stats.lookups.fetch_add(1, Ordering::Relaxed);
    }
    if lookup.gone.has_changed().is_err() {
        return; // the connection went meanwhile
    }
    let cache = result.is_ok().then_some(lookup.digest);
    shared.send(
        lookup.to.shard,
        ShardMsg::ConnectDone {
            to: lookup.to,
            refresh: lookup.refresh,
            cache,
            result: result.map(Box::new),
        },
    );
}
