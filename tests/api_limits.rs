//! Rate limits of the server API (docs/api.md#rate-limits): past the rate of a key name or
//! of a client address the answer is 429 with `Retry-After`, a body over the limit is still
//! 413, and a flood of API calls does not keep publications from reaching clients.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::admin::{digest, AdminClient, API_KEY};
use common::*;
use ringhub::config::Driver;
use serde_json::json;

fn rate_limited(r: &admin::Response) -> bool {
    if r.status != 429 {
        return false;
    }
    assert_eq!(r.json()["error"], "rate_limited", "{}", r.body);
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(wait >= 1);
    true
}

#[test]
fn per_key_name_and_per_address() {
    let mut cfg = config(Driver::IoUring);
    cfg.api_keys.push(digest("other-key"));
    let file = std::env::temp_dir().join(format!("ringhub-limits-{}.toml", std::process::id()));
    let entry = |name: &str, key: &str| {
        format!(
            "[[keys]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n",
            digest(key)
        )
    };
    std::fs::write(
        &file,
        entry("game", "game-1") + &entry("game", "game-2") + &entry("tools", "tools-1"),
    )
    .unwrap();
    cfg.api_keys_file = Some(file.clone());
    cfg.api_rate_per_key = 1;
    cfg.api_burst_per_key = 2;
    let hub = start(cfg);
    let call = |key: &str| {
        let mut c = AdminClient::new(hub.admin);
        c.key = Some(key.into());
        c.get("/api/info")
    };
    // Two keys of one name share its bucket.
    assert_eq!(call("game-1").status, 200);
    assert_eq!(call("game-2").status, 200);
    assert!(rate_limited(&call("game-1")));
    assert!(rate_limited(&call("game-2")));
    // Another name has its own.
    assert_eq!(call("tools-1").status, 200);
    let metrics = hub.api().get("/metrics").body;
    assert!(
        metrics.contains("ringhub_api_key_requests_total{key=\"game\",status=\"429\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("ringhub_api_requests_total{endpoint=\"api_info\",status=\"429\"} 2"));
    drop(hub);
    let _ = std::fs::remove_file(file);

    let mut cfg = config(Driver::Epoll);
    cfg.api_rate_per_ip = 1;
    cfg.api_burst_per_ip = 3;
    let hub = start(cfg);
    let mut c = hub.api();
    // A body over the limit is still 413 (within the rate).
    let big = vec![b'x'; (1 << 20) + 1];
    let r = c.call("POST", "/api/publish", Some(&big), &[]);
    assert_eq!(r.status, 413);
    assert_eq!(c.get("/api/info").status, 200);
    // Keys or not, the address is limited before the key is looked at.
    let mut anonymous = AdminClient::new(hub.admin).without_key();
    assert_eq!(anonymous.get("/api/info").status, 401);
    assert!(rate_limited(&anonymous.get("/api/info")));
    assert!(rate_limited(&c.get("/api/info")));
    // The open endpoints are not limited.
    assert_eq!(anonymous.get("/health").status, 200);
    assert_eq!(anonymous.get("/metrics").status, 200);
}

/// Eight keep-alive clients flood the API (most calls get 429) while a client publishes
/// to four subscribers: every publication arrives, in order.
#[test]
fn a_flood_of_api_calls_does_not_stop_delivery() {
    const PUBLICATIONS: u64 = 300;
    let mut config = config(Driver::IoUring);
    config.api_rate_per_ip = 200;
    config.api_burst_per_ip = 50;
    let hub = start(config);
    let mut subscribers: Vec<Client> = (0..4)
        .map(|i| {
            let (mut c, _) = connect(hub.addr, &format!("sub-{i}"));
            c.subscribe("chat:flood");
            c
        })
        .collect();
    let (mut publisher, _) = connect(hub.addr, "publisher");
    let limited = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..8)
        .map(|_| {
            let (admin, limited) = (hub.admin, limited.clone());
            std::thread::spawn(move || {
                let mut c = AdminClient::new(admin);
                c.key = Some(API_KEY.into());
                for n in 0..250 {
                    let r = if n % 2 == 0 {
                        c.get("/api/info")
                    } else {
                        c.post(
                            "/api/publish",
                            &json!({"channel": "chat:elsewhere", "data": n}),
                        )
                    };
                    match r.status {
                        200 => {}
                        429 => {
                            limited.fetch_add(1, Ordering::Relaxed);
                        }
                        s => panic!("unexpected status {s}: {}", r.body),
                    }
                }
            })
        })
        .collect();
    for n in 0..PUBLICATIONS {
        publisher.send(json!({"type": "publish", "channel": "chat:flood", "data": n}));
    }
    for s in &mut subscribers {
        for n in 0..PUBLICATIONS {
            let m = s.recv();
            assert_eq!(
                (m["type"].as_str(), m["data"].as_u64()),
                (Some("message"), Some(n)),
                "{m}"
            );
        }
    }
    for f in flooders {
        f.join().unwrap();
    }
    assert!(
        limited.load(Ordering::Relaxed) > 0,
        "the flood was never limited"
    );
}
