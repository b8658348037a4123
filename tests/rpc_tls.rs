//! `rpc` to an `https://` backend: a certificate authority made by the test signs the
//! backend's certificate; the hub trusts it through `rpc_ca_file`, and refuses a backend
//! whose certificate it cannot verify.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use common::pki::{pki, Pki};
use common::*;
use ringhub::config::Driver;
use serde_json::json;

/// An https backend answering `{"data":"secure"}` to every call, one per connection.
fn https_backend(pki: &Pki) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut reader = BufReader::new(&mut tls);
                let mut length = 0;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return; // the handshake failed, or the hub hung up
                    }
                    let l = line.trim_end().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let answer = r#"{"data":"secure"}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = tls.write_all(response.as_bytes());
                let _ = tls.flush();
            });
        }
    });
    port
}

#[test]
fn calls_reach_an_https_backend_trusted_through_rpc_ca_file() {
    let pki = pki();
    let port = https_backend(&pki);
    let dir = std::env::temp_dir().join(format!("ringhub-rpc-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();

    let mut trusting = config(Driver::IoUring);
    trusting.rpc_url = Some(format!("https://localhost:{port}/rpc"));
    trusting.rpc_ca_file = Some(ca.clone());
    let hub = start(trusting);
    let (mut c, _) = connect(hub.addr, "alice");
    let r = c.request(json!({"type": "rpc", "method": "m"}), 1);
    assert_eq!(r, json!({"id": 1, "type": "result", "data": "secure"}));

    // Without the CA, the system's roots do not vouch for the test's certificate.
    let mut doubting = config(Driver::Epoll);
    doubting.rpc_url = Some(format!("https://localhost:{port}/rpc"));
    let hub = start(doubting);
    let (mut c, _) = connect(hub.addr, "bob");
    let r = c.request(json!({"type": "rpc", "method": "m"}), 2);
    assert_eq!(r["code"], "unavailable", "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_ca_file_without_certificates_is_refused_at_startup() {
    let dir = std::env::temp_dir().join(format!("ringhub-rpc-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("empty.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let c = ringhub::Config {
        rpc_url: Some("https://backend/rpc".into()),
        rpc_ca_file: Some(ca),
        ..ringhub::Config::default()
    };
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("rpc_ca_file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
