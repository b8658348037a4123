//! TLS on the client listener and the admin port, with a certificate authority made by the
//! test: `wss://` beside `ws://` on both drivers, refusals that harm nobody, a bad
//! certificate at start, the reload of the certificate under open connections, and Python's
//! `websockets` as a client that trusts the test's authority.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::admin::metric;
use common::pki::{connect_tls, pki, tls, write_leaf, Pki, TempDir};
use common::*;
use ringhub::config::Driver;
use ringhub::Config;
use serde_json::json;

/// The test config with a TLS listener beside the plaintext one, certificate from `pki`.
fn tls_config(driver: Driver, pki: &Pki, dir: &TempDir) -> Config {
    let (cert, key) = write_leaf(&dir.0, "hub", &pki.leaf());
    Config {
        tls_cert: Some(cert),
        tls_key: Some(key),
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_reload_interval: Duration::from_millis(20),
        ..config(driver)
    }
}

/// Clients over `wss://` (on several shards: users hash apart, so connections are handed
/// over with their TLS session) and over `ws://` share a channel; a publication from
/// either side reaches all, also one spanning many TLS records.
fn wss_beside_ws(driver: Driver) {
    let pki = pki();
    let dir = TempDir::new("tls");
    let hub = start(tls_config(driver, &pki, &dir));
    let addr = hub.hub().tls_addr().expect("a TLS listener");
    assert_ne!(addr, hub.addr);
    let client = pki.client_config();
    let mut secure: Vec<_> = (0..6)
        .map(|i| connect_tls(addr, &client, &format!("tls-user-{i}")).0)
        .collect();
    let (mut plain, _) = connect(hub.addr, "plain-user");
    for c in secure.iter_mut() {
        assert_eq!(c.ws.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        c.subscribe("chat:tls");
    }
    plain.subscribe("chat:tls");
    let big = "x".repeat(60_000);
    let ack = secure[0].request(
        json!({"type": "publish", "channel": "chat:tls", "data": {"big": big}}),
        1,
    );
    assert_eq!(ack["type"], "ack", "{ack}");
    plain.send(json!({"type": "publish", "channel": "chat:tls", "data": "from ws"}));
    // Two publishers on different shards: each one's order holds, not the order between
    // them, so each subscriber gets both in either order.
    let is_big = |f: &serde_json::Value| f["data"]["big"].as_str().map(str::len) == Some(60_000);
    for c in secure.iter_mut().skip(1) {
        let (a, b) = (c.recv(), c.recv());
        assert!(is_big(&a) || is_big(&b), "no big publication: {a} {b}");
        assert!(a["data"] == "from ws" || b["data"] == "from ws", "{a} {b}");
    }
    let (a, b) = (plain.recv(), plain.recv());
    assert!(is_big(&a) || is_big(&b), "no big publication over ws://");
    // The server API's publications go out over TLS as well.
    let r = hub.api().post(
        "/api/publish",
        &json!({"channel": "chat:tls", "data": {"n": 1}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for c in secure.iter_mut() {
        // The publisher has not read "from ws" yet.
        let frames: Vec<_> = (0..2)
            .map(|_| c.recv())
            .take_while(|f| f["data"] != json!({"n": 1}))
            .collect();
        assert!(frames.len() < 2, "no API publication after {frames:?}");
    }
    for c in secure {
        c.close();
    }
}

/// Plaintext HTTP on the TLS port is closed (no panic, no answer in clear text), a TLS
/// ClientHello on the plaintext port keeps its 400, and both ports serve on.
fn wrong_protocol_on_each_port(driver: Driver) {
    let pki = pki();
    let dir = TempDir::new("tls");
    let hub = start(tls_config(driver, &pki, &dir));
    let addr = hub.hub().tls_addr().unwrap();
    let answer = raw_exchange(addr, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        !answer.starts_with(b"HTTP"),
        "answered in clear text: {answer:?}"
    );
    let client = pki.client_config();
    let mut hello = Vec::new();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    rustls::ClientConnection::new(client.clone(), name)
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    let (status, _) = http_status(&raw_exchange(hub.addr, &hello));
    assert_eq!(status, 400);
    // Garbage after a good handshake: the session ends with an alert, the hub serves on.
    let mut stream = tls(addr, &client).unwrap();
    stream.sock.write_all(b"\x17\x03\x03\x00\x05hello").unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    connect_tls(addr, &client, "after").0.close();
    connect(hub.addr, "after-plain").0.close();
    let metrics = hub.api().get("/metrics").body;
    assert!(
        metric(&metrics, "ringhub_tls_errors_total") >= 2.0,
        "{metrics}"
    );
}

/// `listen` itself serves TLS when there is a certificate and no `tls_listen`; `/health`
/// answers over it.
#[test]
fn listen_alone_serves_tls() {
    let pki = pki();
    let dir = TempDir::new("tls");
    let config = Config {
        tls_listen: None,
        ..tls_config(Driver::Auto, &pki, &dir)
    };
    let hub = start(config);
    assert_eq!(hub.hub().tls_addr(), Some(hub.addr));
    let mut stream = tls(hub.addr, &pki.client_config()).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert_eq!(
        http_status(&answer).0,
        200,
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// A certificate that is not one, or a key of another certificate: the start fails with
/// the setting and the file named.
#[test]
fn bad_certificate_fails_the_start() {
    let pki = pki();
    let dir = TempDir::new("tls");
    let mut config = tls_config(Driver::Auto, &pki, &dir);
    let garbage = dir.path("garbage.crt");
    std::fs::write(&garbage, "not a certificate").unwrap();
    config.tls_cert = Some(garbage);
    let error = ringhub::Hub::start(config)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("tls_cert") && error.contains("garbage.crt"),
        "{error}"
    );
    let mut config = tls_config(Driver::Auto, &pki, &dir);
    let (_, other_key) = write_leaf(&dir.0, "other", &pki.leaf());
    config.tls_key = Some(other_key);
    let error = ringhub::Hub::start(config)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("tls_cert"), "{error}");
}

/// The admin port over TLS with its own certificate: `/health` and the server API.
#[test]
fn admin_port_over_tls() {
    let pki = pki();
    let dir = TempDir::new("tls");
    let (cert, key) = write_leaf(&dir.0, "admin", &pki.leaf());
    let config = Config {
        admin_tls_cert: Some(cert),
        admin_tls_key: Some(key),
        ..config(Driver::Auto)
    };
    let hub = start(config);
    let mut stream = tls(hub.admin, &pki.client_config()).unwrap();
    let request = format!(
        "GET /api/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        admin::API_KEY
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Plaintext on it gets nothing in clear text.
    let answer = raw_exchange(hub.admin, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!answer.starts_with(b"HTTP"), "{answer:?}");
}

/// The certificate files replaced under open connections: those stay and keep working, a
/// new handshake presents the new certificate; a bad file later is refused and counted,
/// and the certificate in force stays; `SIGHUP`'s reload takes the files as they are.
fn reload_under_open_connections(driver: Driver) {
    let pki = pki();
    let dir = TempDir::new("tls");
    let hub = start(tls_config(driver, &pki, &dir));
    let addr = hub.hub().tls_addr().unwrap();
    let client = pki.client_config();
    let presented = || {
        let stream = tls(addr, &client).unwrap();
        stream.conn.peer_certificates().unwrap()[0].clone()
    };
    let first = presented();
    let (mut old, _) = connect_tls(addr, &client, "old-1");
    let (mut other, _) = connect_tls(addr, &client, "old-2");
    old.subscribe("chat:reload");
    let second = pki.leaf();
    write_leaf(&dir.0, "hub", &second);
    assert!(
        eventually(|| presented() == second.cert),
        "the new certificate is not served"
    );
    assert_ne!(first, second.cert);
    let ack = other.request(
        json!({"type": "publish", "channel": "chat:reload", "data": "still here"}),
        7,
    );
    assert_eq!(ack["type"], "ack");
    assert_eq!(old.recv()["data"], "still here");

    std::fs::write(dir.path("hub.crt"), "broken").unwrap();
    let failed = || {
        let metrics = hub.api().get("/metrics").body;
        let series = r#"ringhub_tls_reloads_total{listener="tls",result="failed"}"#;
        admin::find_metric(&metrics, series).unwrap_or(0.0)
    };
    assert!(
        eventually(|| failed() >= 1.0),
        "the bad certificate was not counted"
    );
    assert_eq!(
        presented(),
        second.cert,
        "a bad file replaced the certificate"
    );

    let third = pki.leaf();
    write_leaf(&dir.0, "hub", &third);
    assert_eq!(hub.hub().reloads().run(), 0, "SIGHUP's reload failed");
    assert_eq!(presented(), third.cert);
    old.request(json!({"type": "ping"}), 8);
}

both_drivers!(
    wss_beside_ws,
    wrong_protocol_on_each_port,
    reload_under_open_connections
);

/// Python's `websockets` connects over `wss://`, trusting the test's authority, gets its
/// welcome and a publication. Skipped (saying so) only where there is no Python;
/// `TEST_PYTHON` names the interpreter (scripts/test.sh sets it to a venv with websockets).
#[test]
fn python_websockets_over_wss() {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    if std::process::Command::new(&python)
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping python_websockets_over_wss: no {python} (set TEST_PYTHON)");
        return;
    }
    let pki = pki();
    let dir = TempDir::new("tls");
    let hub = start(tls_config(Driver::Auto, &pki, &dir));
    let addr = hub.hub().tls_addr().unwrap();
    let ca = dir.path("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let script = r#"
import asyncio, json, ssl, sys
import websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    async with websockets.connect(sys.argv[2], ssl=ctx) as ws:
        welcome = json.loads(await ws.recv())
        await ws.send(json.dumps({"id": 1, "type": "subscribe", "channel": "chat:py"}))
        await ws.recv()
        await ws.send(json.dumps({"id": 2, "type": "publish", "channel": "chat:py", "data": "hi"}))
        message = json.loads(await ws.recv())
        print(welcome["type"], message["data"])
asyncio.run(main())
"#;
    let url = format!(
        "wss://localhost:{}/ws?token={}",
        addr.port(),
        token("py-user")
    );
    let out = std::process::Command::new(&python)
        .args(["-c", script, ca.to_str().unwrap(), &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'websockets'"),
        "{python} has no `websockets`: pip install websockets (scripts/test.sh does, in a venv)"
    );
    assert!(out.status.success(), "python failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "welcome hi");
}
