//! The connect proxy: a real HTTP backend written here decides who an opaque token is. It
//! answers (the connection is then a JWT connection in all but origin), refuses (4001,
//! 4003), fails or hangs (1013), and a hanging backend holds up only the connections
//! waiting for it.

mod common;

use std::time::Duration;

use common::backend::{Answer, Backend, Gate};
use common::*;
use ringhub::config::Driver;
use serde_json::json;

both_drivers!(an_answer_opens_the_connection_as_a_jwt_would,);

fn now() -> u64 {
    ringhub::auth::unix_now()
}

/// The backend's answer for `user`.
fn welcome_as(user: &str, ttl: u64) -> Answer {
    Answer::ok(
        json!({"user": user, "channels": ["table:*"], "publish": ["table:*"],
        "expires_at": now() + ttl, "info": {"level": 3}}),
    )
}

fn proxied(driver: Driver, backend: &Backend) -> ringhub::Config {
    let mut c = config(driver);
    c.connect_proxy_url = Some(backend.url());
    c.connect_proxy_headers = vec!["Cookie".into(), "X-Game".into()];
    c.connect_proxy_timeout = Duration::from_secs(4);
    c.rpc_secret = Some("s3cret".into());
    c
}

fn open_with(addr: std::net::SocketAddr, token: &str, extra: &[(&str, &str)]) -> Client {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    open(addr, "/ws", &headers).expect("upgrade")
}

fn an_answer_opens_the_connection_as_a_jwt_would(driver: Driver) {
    let backend = Backend::start(|r| match r["token"].as_str().unwrap() {
        "opaque-alice" => welcome_as("alice", 3600),
        "opaque-bob" => welcome_as("bob", 3600),
        other => panic!("unexpected token {other}"),
    });
    let hub = start(proxied(driver, &backend));
    let mut c = open_with(
        hub.addr,
        "opaque-alice",
        &[("cookie", "session=1"), ("x-other", "no")],
    );
    let welcome = c.recv();
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["user"], "alice");
    let asked = &backend.requests()[0];
    assert_eq!(asked["token"], "opaque-alice");
    assert_eq!(asked["conn"], welcome["conn"]);
    assert_eq!(asked["refresh"], false);
    assert!(
        asked["addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{asked}"
    );
    // Only the named headers go, under the name the client gave.
    let headers = asked["headers"].as_object().unwrap();
    assert_eq!(headers.len(), 1, "{asked}");
    assert_eq!(headers.values().next().unwrap(), "session=1");
    let raw = &backend.raw_requests()[0];
    let conn = welcome["conn"].as_str().unwrap();
    assert_eq!(raw.header("x-ringhub-conn"), Some(conn));
    assert!(raw.header("x-request-id").unwrap().starts_with(conn));
    let signature = raw.header("x-ringhub-signature").expect("signed");
    assert!(ringhub::auth::sign::verify(
        b"s3cret",
        &raw.body,
        signature,
        now(),
        60
    ));

    // The channels the backend gave are the token's: subscribe and publish.
    c.subscribe("table:1");
    let r = c.request(
        json!({"type": "publish", "channel": "table:1", "data": {"m": 1}}),
        2,
    );
    assert_eq!(r["type"], "ack", "{r}");
    let r = c.request(json!({"type": "subscribe", "channel": "other:1"}), 3);
    assert_eq!(r["code"], "forbidden", "{r}");

    // A user's connections meet on one shard, whichever accepted them (hand-off), and the
    // first-frame `auth` and the query token go to the proxy too.
    let mut shards = vec![welcome["shard"].clone()];
    for i in 0..6 {
        let mut d = if i % 2 == 0 {
            let mut d = open(hub.addr, "/ws", &[]).unwrap();
            d.send(json!({"type": "auth", "token": "opaque-alice", "id": 7}));
            d
        } else {
            open(hub.addr, "/ws?token=opaque-alice", &[]).unwrap()
        };
        let w = d.recv();
        assert_eq!(w["user"], "alice", "{w}");
        if i % 2 == 0 {
            assert_eq!(w["id"], 7, "{w}");
        }
        shards.push(w["shard"].clone());
    }
    shards.dedup();
    assert_eq!(shards.len(), 1, "{shards:?}");

    // A JWT is still verified by the hub, without a call.
    let calls = backend.requests().len();
    let (_jwt, w) = connect(hub.addr, "carol");
    assert_eq!(w["user"], "carol");
    assert_eq!(backend.requests().len(), calls);

    // Presence shows the backend's info.
    let mut b = open_with(hub.addr, "opaque-bob", &[]);
    assert_eq!(b.recv()["user"], "bob");
    b.subscribe("room:1");
    let p = b.request(json!({"type": "presence", "channel": "room:1"}), 4);
    assert_eq!(p["users"][0]["info"], json!({"level": 3}), "{p}");
}

#[test]
fn refusals_close_4001_or_4003_and_failures_1013() {
    let gate = Gate::default();
    let hang = gate.clone();
    let backend = Backend::start(move |r| match r["token"].as_str().unwrap() {
        "unknown" => {
            Answer::ok(json!({"error": {"code": "unauthorized", "reason": "unknown token"}}))
        }
        "banned" => Answer::ok(json!({"error": {"code": "forbidden", "reason": "banned"}})),
        "broken" => Answer {
            status: 500,
            body: "{}".into(),
            delay: Duration::ZERO,
        },
        "garbage" => Answer::ok(json!([1, 2])),
        "hang" => {
            hang.wait();
            welcome_as("late", 60)
        }
        other => panic!("unexpected token {other}"),
    });
    let mut c = proxied(Driver::Auto, &backend);
    c.connect_proxy_timeout = Duration::from_millis(300);
    c.rpc_breaker_failures = 0; // the failures here must not open the breaker
    c.rpc_breaker_failure_ratio = 0.0;
    let hub = start(c);
    let cases = [
        ("unknown", 4001, "unknown token"),
        ("banned", 4003, "banned"),
        ("broken", 1013, "the rpc backend answered HTTP 500"),
        (
            "garbage",
            1013,
            "the connect backend's answer is not the expected JSON object",
        ),
        ("hang", 1013, "the rpc backend did not answer within 300ms"),
    ];
    for (token, code, reason) in cases {
        let mut c = open_with(hub.addr, token, &[]);
        assert_eq!(c.recv_close(), (code, reason.to_string()), "{token}");
        // The first-frame `auth` ends the same way.
        let mut c = open(hub.addr, "/ws", &[]).unwrap();
        c.send(json!({"type": "auth", "token": token}));
        assert_eq!(c.recv_close().0, code, "{token}");
    }
    gate.open();
    // A JWT that fails verification is refused by the hub itself, before the upgrade.
    let opts = ringhub::auth::MintOptions {
        user: "x".into(),
        ttl: 60,
        ..Default::default()
    };
    let forged = format!("Bearer {}", ringhub::auth::mint(b"not the secret", &opts));
    assert_eq!(refused(hub.addr, "/ws", &[("authorization", &forged)]), 401);
}

#[test]
fn a_hanging_backend_holds_only_the_connections_waiting_for_it() {
    let gate = Gate::default();
    let hang = gate.clone();
    let backend = Backend::start(move |_| {
        hang.wait();
        welcome_as("slow", 3600)
    });
    let mut c = proxied(Driver::Auto, &backend);
    c.connect_proxy_timeout = Duration::from_secs(20);
    c.auth_timeout = Duration::from_secs(20);
    let hub = start(c);
    let (mut sub, _) = connect(hub.addr, "sub");
    sub.subscribe("chat:1");
    let (mut publisher, _) = connect(hub.addr, "pub");
    // Several connections wait on the backend; one already asks to subscribe.
    let mut waiting: Vec<Client> = (0..4)
        .map(|_| open_with(hub.addr, "opaque-slow", &[]))
        .collect();
    waiting[0].send(json!({"type": "subscribe", "channel": "table:9", "id": 1}));
    assert!(eventually(|| backend.requests().len() == 4));
    for i in 0..50 {
        publisher.send(json!({"type": "publish", "channel": "chat:1", "data": i}));
    }
    for i in 0..50 {
        let m = sub.recv();
        assert_eq!(
            (m["type"].as_str(), m["data"].as_i64()),
            (Some("message"), Some(i))
        );
    }
    // ...and when the backend answers, they open, and what they sent meanwhile is done.
    gate.open();
    for w in &mut waiting {
        assert_eq!(w.recv()["type"], "welcome");
    }
    assert_eq!(waiting[0].recv()["type"], "subscribed");
}

#[test]
fn refresh_asks_the_proxy_again() {
    let backend = Backend::start(|r| {
        let token = r["token"].as_str().unwrap();
        match (token, r["refresh"].as_bool().unwrap()) {
            ("short", false) => welcome_as("alice", 1),
            ("short-2", false) => welcome_as("bob", 1),
            ("renewed", true) => {
                assert_eq!(r["user"], "alice");
                welcome_as("alice", 3600)
            }
            ("mallory", true) => welcome_as("mallory", 3600),
            ("refused", true) => {
                Answer::ok(json!({"error": {"code": "unauthorized", "reason": "logged out"}}))
            }
            other => panic!("unexpected {other:?}"),
        }
    });
    let hub = start(proxied(Driver::Auto, &backend));
    let mut alice = open_with(hub.addr, "short", &[]);
    let welcome = alice.recv();
    let old_exp = welcome["expires_at"].as_u64().unwrap();
    // Within the refresh window from the start: `expiring` comes at once.
    assert_eq!(alice.recv()["type"], "expiring");
    let mut bob = open_with(hub.addr, "short-2", &[]);
    assert_eq!(bob.recv()["type"], "welcome");

    let r = alice.request(json!({"type": "refresh", "token": "refused"}), 1);
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("unauthorized"), Some("token refused: logged out"))
    );
    let r = alice.request(json!({"type": "refresh", "token": "mallory"}), 2);
    assert_eq!(r["code"], "unauthorized", "{r}");
    let r = alice.request(json!({"type": "refresh", "token": "renewed"}), 3);
    assert_eq!(r["type"], "refreshed", "{r}");
    assert!(r["expires_at"].as_u64().unwrap() > old_exp + 3000, "{r}");

    // Bob did not refresh: closed at the backend's `expires_at`; Alice stays.
    let (frames, code) = bob.recv_until_close();
    assert_eq!(code, 4001, "{frames:?}");
    assert!(now() >= old_exp);
    alice.subscribe("table:1");
}

#[test]
fn revocation_by_user_closes_proxy_connections() {
    let backend = Backend::start(|_| welcome_as("eve", 3600));
    let hub = start(proxied(Driver::Auto, &backend));
    let mut eve: Vec<Client> = (0..3)
        .map(|_| open_with(hub.addr, "opaque-eve", &[]))
        .collect();
    for c in &mut eve {
        assert_eq!(c.recv()["type"], "welcome");
    }
    let r = hub.api().post(
        "/api/revoke",
        &json!({"user": "eve", "issued_before": now() + 1}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for c in &mut eve {
        assert_eq!(c.recv_close(), (4004, "token revoked".to_string()));
    }
    // Vouched for before the rule: refused again.
    let mut again = open_with(hub.addr, "opaque-eve", &[]);
    assert_eq!(again.recv_close().0, 4004);
}

#[test]
fn an_open_breaker_closes_with_1013_without_calling() {
    let backend = Backend::start(|_| Answer {
        status: 503,
        body: "{}".into(),
        delay: Duration::ZERO,
    });
    let mut c = proxied(Driver::Auto, &backend);
    c.rpc_breaker_failures = 2;
    c.rpc_breaker_open_for = Duration::from_secs(60);
    let hub = start(c);
    for _ in 0..2 {
        let mut c = open_with(hub.addr, "any", &[]);
        assert_eq!(c.recv_close().0, 1013);
    }
    let mut c = open_with(hub.addr, "any", &[]);
    let (code, reason) = c.recv_close();
    assert_eq!(code, 1013);
    assert!(reason.contains("paused"), "{reason}");
    assert_eq!(backend.requests().len(), 2);
}

#[test]
fn connect_proxy_always_asks_about_jwts_too() {
    let backend = Backend::start(|r| {
        assert!(r["token"].as_str().unwrap().contains('.'), "{r}");
        welcome_as("from-backend", 3600)
    });
    let mut c = proxied(Driver::Auto, &backend);
    c.connect_proxy_always = true;
    let hub = start(c);
    // The JWT says "jwt-user"; the backend decides. The `auth` frame's connection keeps the
    // upgrade's listed headers for the call.
    let mut c = open(hub.addr, "/ws", &[("x-game", "7")]).unwrap();
    c.send(json!({"type": "auth", "token": token("jwt-user")}));
    assert_eq!(c.recv()["user"], "from-backend");
    assert_eq!(backend.requests()[0]["headers"], json!({"x-game": "7"}));
}
