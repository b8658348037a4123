//! `rpc`: calls reach the backend of their method over real HTTP, and its answers (or
//! failures) come back to the caller as `result` or clear errors.

mod common;

use std::time::{Duration, Instant};

use common::backend::{Answer, Backend, Gate};
use common::*;
use ringhub::config::Driver;
use serde_json::{json, Value};

both_drivers!(
    calls_reach_the_backend_of_their_method_and_answers_come_back,
    failures_are_clear_errors_and_the_connection_carries_on,
    calls_beyond_what_may_wait_are_refused_at_once,
    one_connection_cannot_hold_more_than_sixteen_calls,
    an_answer_for_a_closed_connection_reaches_nobody,
);

fn calls_reach_the_backend_of_their_method_and_answers_come_back(driver: Driver) {
    let lobby =
        Backend::start(|r| Answer::ok(json!({"data": {"from": "lobby", "echo": r["data"]}})));
    let game =
        Backend::start(|r| Answer::ok(json!({"data": {"from": "game", "method": r["method"]}})));
    let mut config = config(driver);
    config.rpc_url = Some(lobby.url());
    config.rpc_methods.insert("game.*".into(), game.url());
    let hub = start(config);
    let (mut c, welcome) = connect_token(hub.addr, &token_info("alice", json!({"level": 3})));

    let r = c.request(
        json!({"type": "rpc", "method": "game.move", "data": {"x": 1}}),
        1,
    );
    assert_eq!(
        r,
        json!({"id": 1, "type": "result", "data": {"from": "game", "method": "game.move"}})
    );
    let seen = game.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["method"], "game.move");
    assert_eq!(seen[0]["data"], json!({"x": 1}));
    assert_eq!(seen[0]["user"], "alice");
    assert_eq!(seen[0]["info"], json!({"level": 3}));
    assert_eq!(seen[0]["conn"], welcome["conn"]);
    assert_eq!(seen[0]["instance"], welcome["instance"]);

    // Every other method goes to `rpc_url`; `data` comes back as the backend wrote it.
    let r = c.request(
        json!({"type": "rpc", "method": "lobby.list", "data": [1, "two", null]}),
        2,
    );
    assert_eq!(
        r["data"],
        json!({"from": "lobby", "echo": [1, "two", null]}),
        "{r}"
    );

    // Without an id the call is made, and no success reply comes.
    c.send(json!({"type": "rpc", "method": "lobby.ping"}));
    assert!(eventually(|| lobby.requests().len() == 2));
    assert_eq!(lobby.requests()[1]["data"], Value::Null);
    let r = c.request(json!({"type": "ping"}), 3);
    assert_eq!(r["type"], "pong");
    let late = c.frames_for(Duration::from_millis(200));
    assert!(
        late.is_empty(),
        "no reply expected for a call without id: {late:?}"
    );
}

fn calls_beyond_what_may_wait_are_refused_at_once(driver: Driver) {
    let backend = Backend::start(|_| Answer {
        delay: Duration::from_millis(300),
        ..Answer::ok(json!({"data": "done"}))
    });
    let mut config = config(driver);
    config.rpc_url = Some(backend.url());
    config.rpc_max_in_flight = 1;
    let hub = start(config);
    let (mut c, _) = connect(hub.addr, "carol");
    for id in 1..=6 {
        c.send(json!({"id": id, "type": "rpc", "method": "m"}));
    }
    let mut answers = Vec::new();
    while answers.len() < 6 {
        answers.push(c.recv());
    }
    let done = answers.iter().filter(|a| a["type"] == "result").count();
    let refused = answers
        .iter()
        .filter(|a| a["code"] == "unavailable")
        .count();
    assert_eq!(done + refused, 6, "{answers:?}");
    // One posted, one waiting, at most one more taken by the poster: the rest refused.
    assert!(done >= 1 && refused >= 3, "{answers:?}");
    let metrics = cluster::scrape(&hub);
    assert_eq!(
        admin::metric(&metrics, "ringhub_rpc_refused_total"),
        refused as f64
    );
}

fn one_connection_cannot_hold_more_than_sixteen_calls(driver: Driver) {
    let backend = Backend::start(|_| Answer {
        delay: Duration::from_millis(300),
        ..Answer::ok(json!({"data": "done"}))
    });
    let mut config = config(driver);
    config.rpc_url = Some(backend.url());
    let hub = start(config);
    let (mut greedy, _) = connect(hub.addr, "greedy");
    let (mut other, _) = connect(hub.addr, "other");
    for id in 1..=20 {
        greedy.send(json!({"id": id, "type": "rpc", "method": "m"}));
    }
    let r = other.request(json!({"type": "rpc", "method": "m"}), 1);
    assert_eq!(
        r["data"], "done",
        "another connection is served meanwhile: {r}"
    );
    let answers: Vec<Value> = (0..20).map(|_| greedy.recv()).collect();
    let limited: Vec<&Value> = answers
        .iter()
        .filter(|a| a["code"] == "limit_exceeded")
        .collect();
    assert_eq!(limited.len(), 4, "{answers:?}");
    assert!(
        limited.iter().all(|a| a["id"].as_u64().unwrap() > 16),
        "{limited:?}"
    );
    assert_eq!(answers.iter().filter(|a| a["type"] == "result").count(), 16);
    // Answered calls free their places.
    let r = greedy.request(json!({"type": "rpc", "method": "m"}), 21);
    assert_eq!(r["data"], "done", "{r}");
}

fn failures_are_clear_errors_and_the_connection_carries_on(driver: Driver) {
    // `slow` is answered only once the test has seen its timeout.
    let gate = Gate::default();
    let held = gate.clone();
    let backend = Backend::start(move |r| match r["method"].as_str().unwrap() {
        "err.forbidden" => {
            Answer::ok(json!({"error": {"code": "forbidden", "message": "not your table"}}))
        }
        "err.500" => Answer {
            status: 500,
            body: "oops".into(),
            delay: Duration::ZERO,
        },
        "err.garbage" => Answer {
            status: 200,
            body: "<html>".into(),
            delay: Duration::ZERO,
        },
        "slow" => {
            held.wait();
            Answer::ok(json!({"data": "late"}))
        }
        _ => Answer::ok(json!({"data": "fine"})),
    });
    // Nothing can listen on port 0: a connection there is always refused.
    let down = "http://127.0.0.1:0/rpc".to_string();
    let mut config = config(driver);
    for pattern in ["err.*", "slow", "ok"] {
        config.rpc_methods.insert(pattern.into(), backend.url());
    }
    config.rpc_methods.insert("down.*".into(), down);
    config.rpc_timeout = Duration::from_millis(300);
    let hub = start(config);
    let (mut c, _) = connect(hub.addr, "bob");
    let call = |c: &mut Client, method: &str, id: u64| {
        c.request(json!({"type": "rpc", "method": method, "data": {}}), id)
    };
    let code = |r: &Value| r["code"].as_str().unwrap_or("-").to_string();

    let r = call(&mut c, "err.forbidden", 1);
    assert_eq!(
        (code(&r), r["message"].clone()),
        ("forbidden".into(), json!("not your table"))
    );
    assert_eq!(code(&call(&mut c, "err.500", 2)), "unavailable");
    assert_eq!(code(&call(&mut c, "err.garbage", 3)), "internal");
    assert_eq!(code(&call(&mut c, "down.there", 4)), "unavailable");
    assert_eq!(code(&call(&mut c, "nowhere", 5)), "not_found");
    let r = c.request(json!({"type": "rpc", "data": {}}), 6);
    assert_eq!(code(&r), "bad_request", "{r}");

    let asked = Instant::now();
    let r = call(&mut c, "slow", 7);
    assert_eq!(code(&r), "timeout", "{r}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "answered at the timeout, not the backend's pace"
    );

    // The connection is still whole, the late answer never shows, and the backend still serves.
    assert_eq!(call(&mut c, "ok", 8)["data"], "fine");
    let answered = backend.answered();
    gate.open();
    assert!(eventually(|| backend.answered() > answered));
    let late = c.frames_for(Duration::from_millis(200));
    assert!(late.is_empty(), "nothing after a timed-out call: {late:?}");
    assert_eq!(call(&mut c, "ok", 9)["data"], "fine");

    let metrics = cluster::scrape(&hub);
    // Answered: forbidden, ok, ok; failed: 500, garbage, down, slow.
    assert_eq!(
        admin::metric(&metrics, "ringhub_rpc_answered_total"),
        3.0,
        "{metrics}"
    );
    assert_eq!(admin::metric(&metrics, "ringhub_rpc_failed_total"), 4.0);
    assert_eq!(admin::metric(&metrics, "ringhub_rpc_calls_total"), 7.0);
}

fn an_answer_for_a_closed_connection_reaches_nobody(driver: Driver) {
    // `slow` is answered only once its caller has gone and the same user is back.
    let gate = Gate::default();
    let held = gate.clone();
    let backend = Backend::start(move |r| match r["method"].as_str().unwrap() {
        "slow" => {
            held.wait();
            Answer::ok(json!({"data": "for the first connection"}))
        }
        _ => Answer::ok(json!({"data": "fine"})),
    });
    let mut config = config(driver);
    config.rpc_url = Some(backend.url());
    let hub = start(config);
    let (mut first, _) = connect(hub.addr, "dave");
    first.send(json!({"id": 1, "type": "rpc", "method": "slow"}));
    assert!(eventually(|| backend.requests().len() == 1));
    first.close();
    // The same user lands on the same shard, where the closed connection's place is free.
    let (mut second, _) = connect(hub.addr, "dave");
    gate.open();
    // The call stopped waiting when its connection went (or, had the answer come first,
    // the answer was dropped): either way it is over, and nobody heard of it.
    let over = || {
        let m = cluster::scrape(&hub);
        admin::metric(&m, "ringhub_rpc_answered_total")
            + admin::metric(&m, "ringhub_rpc_cancelled_total")
    };
    assert!(eventually(|| over() == 1.0));
    second.expect_silence(Duration::from_millis(200));
    let r = second.request(json!({"type": "rpc", "method": "ok"}), 2);
    assert_eq!(r["data"], "fine", "{r}");
}
