//! Several hubs on one real Redis, for the multi-instance tests.

use std::time::Duration;

use ringhub::config::{Driver, Namespace};

use super::admin::find_metric;
use super::redis::Redis;
use super::{config, eventually, start, TestHub};

/// `n` instances on one Redis, each ready: connected, and seeing the others.
pub fn cluster(redis: &Redis, n: usize) -> Vec<TestHub> {
    cluster_with(redis, n, |_| {})
}

/// `cluster`, with each instance's configuration adjusted by `adjust` first.
pub fn cluster_with(
    redis: &Redis,
    n: usize,
    adjust: impl Fn(&mut ringhub::Config),
) -> Vec<TestHub> {
    instances(n, |c| {
        c.redis_url = Some(redis.url());
        adjust(c)
    })
}

/// `n` instances joined by the Redis that `adjust` configures, each ready.
pub fn instances(n: usize, adjust: impl Fn(&mut ringhub::Config)) -> Vec<TestHub> {
    let hubs: Vec<TestHub> = (0..n)
        .map(|i| {
            let mut c = config(if i % 2 == 0 {
                Driver::IoUring
            } else {
                Driver::Epoll
            });
            c.shards = 2;
            c.instance_id = format!("inst-{i}");
            let ingest = Namespace {
                public: true,
                client_publish: true,
                ingress: true,
                ..Namespace::default()
            };
            c.namespaces.insert("ingest".into(), ingest);
            adjust(&mut c);
            start(c)
        })
        .collect();
    for hub in &hubs {
        let ok = eventually(|| {
            let m = scrape(hub);
            find_metric(&m, "ringhub_relay_up") == Some(1.0)
                && find_metric(&m, "ringhub_relay_peers") == Some((n - 1) as f64)
        });
        assert!(ok, "every instance joins the cluster:\n{}", scrape(hub));
    }
    hubs
}

pub fn scrape(hub: &TestHub) -> String {
    hub.api().without_key().get("/metrics").body
}

/// Waits until `hub`'s relay holds at least `n` channel subscriptions on Redis.
pub fn relay_subscribed(hub: &TestHub, n: usize) {
    let ok = eventually(|| {
        find_metric(&scrape(hub), "ringhub_relay_subscriptions").unwrap_or(0.0) >= n as f64
    });
    assert!(ok, "the relay subscribes:\n{}", scrape(hub));
}

/// Like `eventually`, for reconnects with backoff (up to 20 s).
pub fn eventually_long(mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
