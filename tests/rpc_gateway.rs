//! `rpc` as a gateway to backends: a circuit breaker per backend (a real HTTP backend that
//! fails, then recovers), calls a backend can trust and trace (identity headers, request
//! ids, an HMAC signature), and calls that stop waiting when their client goes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::admin::find_metric;
use common::backend::{Answer, Backend, Gate};
use common::*;
use ringhub::config::Driver;
use serde_json::json;

both_drivers!(
    a_failing_backend_opens_its_breaker_and_a_recovered_one_closes_it,
    client_errors_do_not_open_the_breaker,
    calls_carry_the_caller_and_a_signature_the_backend_can_check,
    a_call_stops_waiting_when_its_client_disconnects,
);

fn metrics(hub: &TestHub) -> String {
    hub.api().without_key().get("/metrics").body
}

fn breaker_metric(hub: &TestHub, name: &str, backend: &Backend, state: Option<&str>) -> f64 {
    let labels = match state {
        Some(s) => format!("{{backend=\"{}\",state=\"{s}\"}}", backend.url()),
        None => format!("{{backend=\"{}\"}}", backend.url()),
    };
    find_metric(&metrics(hub), &format!("{name}{labels}")).unwrap_or(-1.0)
}

fn a_failing_backend_opens_its_breaker_and_a_recovered_one_closes_it(driver: Driver) {
    let failing = Arc::new(AtomicBool::new(true));
    let f = failing.clone();
    let backend = Backend::start(move |_| {
        if f.load(Ordering::SeqCst) {
            Answer {
                status: 503,
                body: "{}".into(),
                delay: Duration::ZERO,
            }
        } else {
            Answer::ok(json!({"data": "fine"}))
        }
    });
    let mut config = config(driver);
    config.rpc_url = Some(backend.url());
    config.rpc_breaker_failures = 3;
    config.rpc_breaker_open_for = Duration::from_millis(400);
    let hub = start(config);
    let (mut c, _) = connect(hub.addr, "alice");
    let call = |c: &mut Client, id| c.request(json!({"type": "rpc", "method": "m"}), id);

    for id in 1..=3 {
        let r = call(&mut c, id);
        assert_eq!(r["code"], "unavailable", "{r}");
        assert!(
            r.get("retry_after_ms").is_none(),
            "the backend's own 503: {r}"
        );
    }
    assert_eq!(backend.requests().len(), 3);
    // Open: answered at once, with when to retry, and nothing reaches the backend.
    let r = call(&mut c, 4);
    assert_eq!(r["code"], "unavailable", "{r}");
    let retry = r["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(retry > 0 && retry <= 400, "{r}");
    assert_eq!(backend.requests().len(), 3, "nothing sent while open");
    assert_eq!(
        breaker_metric(&hub, "ringhub_rpc_breaker_state", &backend, None),
        1.0
    );
    let rejected = breaker_metric(&hub, "ringhub_rpc_breaker_rejected_total", &backend, None);
    assert_eq!(rejected, 1.0);

    // The backend recovers; after `open_for` a probe goes through and closes the breaker.
    failing.store(false, Ordering::SeqCst);
    let closed = eventually(|| call(&mut c, 5)["type"] == "result");
    assert!(closed, "a probe after open_for succeeds");
    assert_eq!(call(&mut c, 6)["data"], "fine");
    assert_eq!(
        breaker_metric(&hub, "ringhub_rpc_breaker_state", &backend, None),
        0.0
    );
    for (state, n) in [("open", 1.0), ("half_open", 1.0), ("closed", 1.0)] {
        let t = breaker_metric(
            &hub,
            "ringhub_rpc_breaker_transitions_total",
            &backend,
            Some(state),
        );
        assert_eq!(t, n, "transitions into {state}");
    }
}

fn client_errors_do_not_open_the_breaker(driver: Driver) {
    let status = Arc::new(AtomicU16::new(404));
    let s = status.clone();
    let backend = Backend::start(move |_| Answer {
        status: s.load(Ordering::SeqCst),
        body: "{}".into(),
        delay: Duration::ZERO,
    });
    let mut config = config(driver);
    config.rpc_url = Some(backend.url());
    config.rpc_breaker_failures = 2;
    let hub = start(config);
    let (mut c, _) = connect(hub.addr, "alice");
    for id in 1..=10 {
        let r = c.request(json!({"type": "rpc", "method": "m"}), id);
        assert_eq!(r["code"], "unavailable", "{r}");
    }
    assert_eq!(backend.requests().len(), 10, "every 4xx call went through");
    assert_eq!(
        breaker_metric(&hub, "ringhub_rpc_breaker_state", &backend, None),
        0.0
    );
}

fn calls_carry_the_caller_and_a_signature_the_backend_can_check(driver: Driver) {
    let backend = Backend::start(|_| Answer::ok(json!({"data": 1})));
    let mut config = config(driver);
    config.rpc_url = Some(backend.url());
    config.rpc_secret = Some("backend-secret".into());
    let hub = start(config);
    let (mut c, welcome) = connect(hub.addr, "alice");
    for id in 1..=2 {
        c.request(json!({"type": "rpc", "method": "m", "data": {"n": id}}), id);
    }
    let raw = backend.raw_requests();
    let bodies = backend.requests();
    assert_eq!(raw.len(), 2);
    for (r, body) in raw.iter().zip(&bodies) {
        assert_eq!(r.header("x-ringhub-user"), Some("alice"));
        assert_eq!(r.header("x-ringhub-conn"), welcome["conn"].as_str());
        assert_eq!(r.header("x-ringhub-instance"), welcome["instance"].as_str());
        let id = r.header("x-request-id").expect("a request id");
        assert_eq!(body["request_id"], id, "the id is in the body too");
        assert!(body["claims"]["exp"].as_u64().is_some(), "{body}");
        let signature = r.header("x-ringhub-signature").expect("signed");
        let now = ringhub::auth::unix_ms() / 1000;
        let check = ringhub::auth::sign::verify;
        assert!(check(b"backend-secret", &r.body, signature, now, 300));
        assert!(!check(b"another", &r.body, signature, now, 300));
    }
    assert_ne!(raw[0].header("x-request-id"), raw[1].header("x-request-id"));
}

fn a_call_stops_waiting_when_its_client_disconnects(driver: Driver) {
    let gate = Gate::default();
    let g = gate.clone();
    let backend = Backend::start(move |_| {
        g.wait();
        Answer::ok(json!({"data": "late"}))
    });
    let mut config = config(driver);
    config.rpc_url = Some(backend.url());
    let hub = start(config);
    let (mut c, _) = connect(hub.addr, "alice");
    c.send(json!({"type": "rpc", "method": "slow", "id": 1}));
    assert!(eventually(|| backend.requests().len() == 1));
    c.close();
    let cancelled =
        eventually(|| find_metric(&metrics(&hub), "ringhub_rpc_cancelled_total") == Some(1.0));
    assert!(cancelled, "{}", metrics(&hub));
    // The late answer reaches nobody, and the hub carries on.
    gate.open();
    let (mut d, _) = connect(hub.addr, "bob");
    assert_eq!(
        d.request(json!({"type": "rpc", "method": "m"}), 2)["data"],
        "late"
    );
}
