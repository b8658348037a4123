//! The `Origin` allowlist of the upgrade (docs/security.md): exact origins and `*.` patterns
//! let browsers in, anything else gets 403, counted by reason; without a list any origin
//! is let in, and a missing `Origin` is allowed unless `allow_missing_origin` is off.

mod common;

use common::*;
use ringhub::config::Driver;
use ringhub::ws::origin::Origins;

fn upgrade(addr: std::net::SocketAddr, origin: Option<&str>) -> Result<(), u16> {
    let auth = format!("Bearer {}", token("browser"));
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(o) = origin {
        headers.push(("origin", o));
    }
    match open(addr, "/ws", &headers) {
        Ok(mut c) => {
            assert_eq!(c.recv()["type"], "welcome");
            Ok(())
        }
        Err(tungstenite::Error::Http(r)) => {
            let body: serde_json::Value =
                serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(body["error"], "forbidden", "{body}");
            Err(r.status().as_u16())
        }
        Err(e) => panic!("expected an answer, got {e}"),
    }
}

fn allowlist(driver: Driver) {
    let mut config = config(driver);
    config.allowed_origins = Origins::new(&[
        "https://game.example.com",
        "https://*.example.com",
        "http://localhost:3000",
    ])
    .unwrap();
    let hub = start(config);
    for ok in [
        "https://game.example.com",
        "https://a.example.com",
        "https://a.b.example.com",
        "https://A.Example.com:443",
        "http://localhost:3000",
    ] {
        assert_eq!(upgrade(hub.addr, Some(ok)), Ok(()), "{ok}");
    }
    let refused = [
        "https://example.com",
        "https://example.com.evil.io",
        "https://a.example.com.evil.io",
        "http://a.example.com",
        "https://a.example.com:8443",
        "http://localhost:3001",
        "null",
        "garbage",
    ];
    for bad in refused {
        assert_eq!(upgrade(hub.addr, Some(bad)), Err(403), "{bad}");
    }
    // Not a browser: allowed by default.
    assert_eq!(upgrade(hub.addr, None), Ok(()));
    // A refusal harms no one else: a client connected before still works.
    let (mut c, _) = connect(hub.addr, "steady");
    c.subscribe("chat:origin");
    let metrics = hub.api().get("/metrics").body;
    let line = format!(
        "ringhub_upgrade_refusals_total{{reason=\"origin\"}} {}",
        refused.len()
    );
    assert!(metrics.contains(&line), "{metrics}");
    assert!(metrics.contains("ringhub_upgrade_refusals_total{reason=\"missing_origin\"} 0"));
}

both_drivers!(allowlist);

#[test]
fn missing_origin_can_be_refused_and_no_list_allows_all() {
    let mut config = config(Driver::IoUring);
    config.allow_missing_origin = false;
    let hub = start(config);
    assert_eq!(upgrade(hub.addr, None), Err(403));
    assert_eq!(
        upgrade(hub.addr, Some("https://anything.example.org")),
        Ok(())
    );
    let metrics = hub.api().get("/metrics").body;
    assert!(
        metrics.contains("ringhub_upgrade_refusals_total{reason=\"missing_origin\"} 1"),
        "{metrics}"
    );
}
