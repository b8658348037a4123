//! `/metrics` moves when the matching event happens: scrape, act, scrape again.

mod common;

use common::admin::{find_metric, metric};
use common::*;
use ringhub::config::Driver;
use serde_json::json;

fn scrape(hub: &TestHub) -> String {
    let r = hub.api().without_key().get("/metrics");
    assert_eq!(r.status, 200);
    r.body
}

/// Polls until `series` has grown by at least `by` over `before`.
fn grows(hub: &TestHub, before: &str, series: &str, by: f64) {
    let start = find_metric(before, series).unwrap_or(0.0);
    let mut now = start;
    let ok = eventually(|| {
        now = find_metric(&scrape(hub), series).unwrap_or(0.0);
        now >= start + by
    });
    assert!(ok, "{series}: {start} -> {now}, expected +{by}");
}

fn connections(text: &str) -> f64 {
    (0..4)
        .map(|s| metric(text, &format!("ringhub_connections{{shard=\"{s}\"}}")))
        .sum()
}

fn connection_lifecycle(driver: Driver) {
    let hub = start_default(driver);
    let m0 = scrape(&hub);
    assert_eq!(connections(&m0), 0.0);
    let (mut c, _) = connect(hub.addr, "metered");
    grows(&hub, &m0, "ringhub_connects_total", 1.0);
    grows(&hub, &m0, "ringhub_connect_to_welcome_samples_total", 1.0);
    assert_eq!(connections(&scrape(&hub)), 1.0);
    assert!(
        metric(
            &scrape(&hub),
            "ringhub_connect_to_welcome_seconds{quantile=\"0.99\"}"
        ) > 0.0
    );

    let m1 = scrape(&hub);
    c.subscribe("chat:metered");
    grows(&hub, &m1, "ringhub_frames_in_total", 1.0);
    grows(&hub, &m1, "ringhub_bytes_in_total", 20.0);
    grows(&hub, &m1, "ringhub_frames_out_total", 1.0);
    grows(&hub, &m1, "ringhub_bytes_out_total", 20.0);

    let m2 = scrape(&hub);
    hub.api().post(
        "/api/publish",
        &json!({"channel": "chat:metered", "data": 1}),
    );
    c.recv();
    grows(&hub, &m2, "ringhub_deliveries_total", 1.0);
    grows(&hub, &m2, "ringhub_api_publish_to_write_samples_total", 1.0);
    grows(
        &hub,
        &m2,
        "ringhub_api_requests_total{endpoint=\"api_publish\",status=\"200\"}",
        1.0,
    );

    let m3 = scrape(&hub);
    c.close();
    grows(&hub, &m3, "ringhub_disconnects_total{code=\"1000\"}", 1.0);
    assert!(eventually(|| connections(&scrape(&hub)) == 0.0));

    let m4 = scrape(&hub);
    let (mut kicked, _) = connect(hub.addr, "kicked");
    hub.api()
        .post("/api/disconnect", &json!({"user": "kicked"}));
    assert_eq!(kicked.recv_close().0, 4004);
    grows(&hub, &m4, "ringhub_disconnects_total{code=\"4004\"}", 1.0);
}

fn auth_failures_by_reason(driver: Driver) {
    let hub = start_default(driver);
    let m0 = scrape(&hub);
    let forged = ringhub::auth::mint(
        b"not-the-secret",
        &ringhub::auth::MintOptions {
            user: "x".into(),
            ttl: 60,
            ..Default::default()
        },
    );
    assert_eq!(refused(hub.addr, &format!("/ws?token={forged}"), &[]), 401);
    grows(
        &hub,
        &m0,
        "ringhub_auth_failures_total{reason=\"bad_signature\"}",
        1.0,
    );
    assert_eq!(refused(hub.addr, "/ws?token=garbage", &[]), 401);
    grows(
        &hub,
        &m0,
        "ringhub_auth_failures_total{reason=\"malformed\"}",
        1.0,
    );
    let api = hub.api().without_key().get("/api/info");
    assert_eq!(api.status, 401);
    grows(
        &hub,
        &m0,
        "ringhub_api_requests_total{endpoint=\"api_info\",status=\"401\"}",
        1.0,
    );
}

fn rate_limited_frames(driver: Driver) {
    let mut config = config(driver);
    config.messages_per_second = 1;
    config.burst = 5;
    let hub = start(config);
    let m0 = scrape(&hub);
    let (mut c, _) = connect(hub.addr, "flooding");
    for i in 0..8 {
        c.send(json!({"id": i, "type": "ping"}));
    }
    grows(&hub, &m0, "ringhub_rate_limited_frames_total", 2.0);
}

both_drivers!(
    connection_lifecycle,
    auth_failures_by_reason,
    rate_limited_frames
);
