//! Redis over TLS and as an ACL user: a real redis-server serving `rediss://` with a
//! certificate from the test's authority, its default user off. Two hubs reach it through
//! `redis_url = "rediss://user:password@..."` and `redis_ca_file`: the relay (publications
//! across instances) and the revocation store work; a wrong password keeps the relay down.

mod common;

use common::admin::find_metric;
use common::cluster::{cluster_with, relay_subscribed, scrape};
use common::pki::pki;
use common::redis::{Redis, ACL_PASSWORD};
use common::*;
use serde_json::json;

#[test]
fn relay_and_store_over_tls_as_an_acl_user() {
    let pki = pki();
    let Some(redis) = Redis::start_secure(&pki) else {
        return;
    };
    let hubs = cluster_with(&redis, 2, |c| {
        c.redis_url = Some(redis.tls_url());
        c.redis_ca_file = Some(redis.ca_file());
    });
    let (mut sub, _) = connect(hubs[0].addr, "sub");
    sub.subscribe("chat:secure");
    relay_subscribed(&hubs[0], 1);
    let (mut publisher, _) = connect(hubs[1].addr, "pub");
    publisher.send(json!({"type": "publish", "channel": "chat:secure", "data": "over tls"}));
    assert_eq!(sub.recv()["data"], "over tls");
    let r = hubs[1]
        .api()
        .post("/api/revoke", &json!({"jti": "token-tls"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["persisted"], true, "{}", r.body);
    // The revocation is in Redis, read back by a plain client as the same ACL user.
    let stored: usize = ::redis::cmd("HLEN")
        .arg("ringhub:revoked")
        .query(&mut redis.client())
        .unwrap();
    assert_eq!(stored, 1, "the revocation is not in Redis");
}

#[test]
fn a_wrong_password_keeps_the_relay_down() {
    let pki = pki();
    let Some(redis) = Redis::start_secure(&pki) else {
        return;
    };
    let mut c = config(ringhub::config::Driver::Auto);
    c.redis_url = Some(redis.tls_url().replace(ACL_PASSWORD, "wrong"));
    c.redis_ca_file = Some(redis.ca_file());
    let hub = start(c);
    // The relay tries (and fails) at once; a few scrapes see it down, never up.
    for _ in 0..5 {
        let m = scrape(&hub);
        assert_eq!(find_metric(&m, "ringhub_relay_up"), Some(0.0), "{m}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (mut c, _) = connect(hub.addr, "local");
    c.subscribe("chat:local");
}
