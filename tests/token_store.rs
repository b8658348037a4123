//! The token store: opaque tokens looked up in a real Redis by their SHA-256, cached per
//! shard, the cache emptied by a revocation on another instance.

mod common;

use std::time::Duration;

use common::cluster::cluster_with;
use common::redis::Redis;
use common::*;
use ringhub::config::TokenStore;
use serde_json::json;
use sha2::{Digest, Sha256};

fn now() -> u64 {
    ringhub::auth::unix_now()
}

fn key(token: &str) -> String {
    format!("ringhub:token:{}", hex::encode(Sha256::digest(token)))
}

fn store(redis: &Redis, token: &str, value: &serde_json::Value) {
    let mut c = redis.client();
    let _: () = ::redis::cmd("SET")
        .arg(key(token))
        .arg(value.to_string())
        .query(&mut c)
        .unwrap();
}

fn forget(redis: &Redis, token: &str) {
    let mut c = redis.client();
    let _: () = ::redis::cmd("DEL").arg(key(token)).query(&mut c).unwrap();
}

fn open_token(addr: std::net::SocketAddr, token: &str) -> Client {
    let auth = format!("Bearer {token}");
    open(addr, "/ws", &[("authorization", &auth)]).expect("upgrade")
}

fn with_store(c: &mut ringhub::Config) {
    c.token_store = Some(TokenStore::Redis);
    // One shard: the cache a connect finds is the one the connect before filled.
    c.shards = 1;
    c.token_cache_ttl = Duration::from_secs(60);
}

#[test]
fn a_stored_token_opens_a_missing_or_expired_one_closes_4001() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let hubs = cluster_with(&redis, 1, with_store);
    let addr = hubs[0].addr;
    store(
        &redis,
        "tok-bob",
        &json!({"sub": "bob", "exp": now() + 3600, "channels": ["table:*"],
            "publish": ["table:*"], "info": {"level": 2}}),
    );
    store(&redis, "tok-old", &json!({"sub": "old", "exp": now() - 1}));
    store(&redis, "tok-bad", &json!(["not", "an", "object"]));

    let mut bob = open_token(addr, "tok-bob");
    let welcome = bob.recv();
    assert_eq!(welcome["user"], "bob", "{welcome}");
    bob.subscribe("table:1");
    let r = bob.request(json!({"type": "subscribe", "channel": "other:1"}), 2);
    assert_eq!(r["code"], "forbidden", "{r}");
    bob.subscribe("room:1");
    let p = bob.request(json!({"type": "presence", "channel": "room:1"}), 3);
    assert_eq!(p["users"][0]["info"], json!({"level": 2}), "{p}");

    for token in ["tok-missing", "tok-old", "tok-bad"] {
        let mut c = open_token(addr, token);
        let closed = (4001, "invalid or expired token".to_string());
        assert_eq!(c.recv_close(), closed, "{token}");
        let mut c = open(addr, "/ws", &[]).unwrap();
        c.send(json!({"type": "auth", "token": token}));
        assert_eq!(c.recv_close().0, 4001, "{token}");
    }

    // The first-frame `auth` reads the store too; a refresh with a stored token works.
    let mut c = open(addr, "/ws", &[]).unwrap();
    c.send(json!({"type": "auth", "token": "tok-bob", "id": 5}));
    assert_eq!(c.recv()["id"], 5);
    store(
        &redis,
        "tok-bob-2",
        &json!({"sub": "bob", "exp": now() + 7200}),
    );
    let r = c.request(json!({"type": "refresh", "token": "tok-bob-2"}), 6);
    assert_eq!(r["type"], "refreshed", "{r}");
    let r = c.request(json!({"type": "refresh", "token": "tok-missing"}), 7);
    assert_eq!(r["code"], "unauthorized", "{r}");

    // Redis gone: retry later (1013), not refused.
    redis.stop();
    let mut c = open_token(addr, "tok-unseen");
    assert_eq!(c.recv_close().0, 1013);
}

#[test]
fn a_revocation_on_another_instance_empties_the_cache() {
    let Some(redis) = Redis::start() else { return };
    let hubs = cluster_with(&redis, 2, with_store);
    store(
        &redis,
        "tok-eve",
        &json!({"sub": "eve", "exp": now() + 3600}),
    );
    let mut first = open_token(hubs[0].addr, "tok-eve");
    assert_eq!(first.recv()["user"], "eve");
    // Gone from Redis, still in the shard's cache: the next connect needs no lookup.
    forget(&redis, "tok-eve");
    let mut second = open_token(hubs[0].addr, "tok-eve");
    assert_eq!(second.recv()["user"], "eve");

    let r = hubs[1].api().post(
        "/api/revoke",
        &json!({"user": "eve", "issued_before": now() + 1}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for c in [&mut first, &mut second] {
        assert_eq!(c.recv_close(), (4004, "token revoked".to_string()));
    }
    // The cache forgot eve: Redis is asked, and has nothing (4001, where a cached entry
    // would have met the revocation rule: 4004).
    let mut third = open_token(hubs[0].addr, "tok-eve");
    assert_eq!(third.recv_close().0, 4001);
    let m = common::cluster::scrape(&hubs[0]);
    assert_eq!(
        common::admin::metric(&m, "ringhub_token_store_cached_total"),
        1.0
    );
    assert_eq!(
        common::admin::metric(&m, "ringhub_token_store_found_total"),
        1.0
    );
    assert_eq!(
        common::admin::metric(&m, "ringhub_token_store_refused_total"),
        1.0
    );
}
