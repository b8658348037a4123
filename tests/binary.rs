//! The `ringhub` binary as a user runs it: zero-config start with a demo token, `token`,
//! bad configuration (exit 64), SIGTERM drain (exit 0).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{demo_url, ringhub, KillOnDrop};
use common::*;

#[test]
fn bad_config_exits_64_with_one_line() {
    let dir = std::env::temp_dir().join(format!("ringhub-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_toml = dir.join("bad.toml");
    std::fs::write(&bad_toml, "ping_interval = \"soon\"\n").unwrap();
    let unknown_key = dir.join("unknown.toml");
    std::fs::write(&unknown_key, "ping_intervall = \"1s\"\n").unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (vec![], vec![("RINGHUB_SHARDS", "many")]),
        (vec![], vec![("RINGHUB_NO_SUCH_SETTING", "1")]),
        (vec![], vec![("RINGHUB_LISTEN", "not-an-address")]),
        (vec!["--config", bad_toml.to_str().unwrap()], vec![]),
        (vec!["--config", unknown_key.to_str().unwrap()], vec![]),
        (vec!["--config", "/nonexistent/ringhub.toml"], vec![]),
        (vec!["--set", "ping_interval=0s"], vec![]),
        (vec![], vec![("RINGHUB_JWT_PUBLIC_KEY", "/nonexistent.pem")]),
        (vec![], vec![("RINGHUB_API_KEYS", "my-plain-key")]),
    ];
    for (args, envs) in cases {
        let out = ringhub().args(&args).envs(envs.clone()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?} {envs:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
        assert!(stderr.starts_with("ringhub: "), "{stderr}");
    }
}

#[test]
fn token_command_mints_verifiable_tokens() {
    let out = ringhub()
        .args([
            "token",
            "--user",
            "alice",
            "--ttl",
            "120",
            "--channels",
            "table:*,chat:1",
            "--publish",
            "chat:1",
        ])
        .env("RINGHUB_JWT_SECRET", "cli-secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let config = ringhub::Config::default();
    let id = ringhub::auth::Verifier::new(&config, b"cli-secret")
        .unwrap()
        .verify(token.trim())
        .unwrap();
    assert_eq!(id.user(), "alice");
    assert_eq!(id.channels().collect::<Vec<_>>(), vec!["table:*", "chat:1"]);
    assert_eq!(id.publish().collect::<Vec<_>>(), vec!["chat:1"]);
    assert!(id.expires_at <= ringhub::auth::unix_now() + 120);
    // without a configured secret there is nothing to sign with
    let out = ringhub()
        .args(["token", "--user", "alice"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn zero_config_start_demo_token_and_sigterm_drain() {
    let mut child = ringhub()
        .env("RINGHUB_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_ADMIN_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_SHARDS", "2")
        .env("RINGHUB_DRAIN_TIMEOUT", "3s")
        .env("RINGHUB_RECONNECT_JITTER", "50ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);
    let child = &mut child.0;
    let mut lines = BufReader::new(stdout).lines();
    let mut url = None;
    let mut driver_logged = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while url.is_none() && Instant::now() < deadline {
        let line = lines.next().expect("log line").unwrap();
        driver_logged |= line.contains("driver=io_uring") || line.contains("driver=epoll");
        url = url.or_else(|| demo_url(&line));
    }
    assert!(driver_logged, "the driver in use is logged at start");
    let (addr, path) = url.expect("a ready-to-use URL with a demo token is logged");
    let mut c = open(addr, &path, &[]).expect("the demo URL connects");
    let welcome = c.recv();
    assert_eq!(welcome["user"], "demo");
    c.subscribe("anything:at-all");

    // SIGTERM: reconnect, 1001, exit 0
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (frames, code) = c.recv_until_close();
    assert_eq!(code, 1001);
    assert_eq!(frames.last().unwrap()["type"], "reconnect");
    drop(c);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "exits within drain_timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    for line in lines.map_while(Result::ok) {
        let _ = line;
    }
}

/// JSON logs: one line per connection open and close and per API request, with the
/// structured fields; the correlation id of an API request in the logs of what it caused;
/// never a token or an API key.
#[test]
fn json_logs_carry_fields_and_correlation_but_no_secrets() {
    let key = common::admin::API_KEY;
    let mut child = ringhub()
        .env("RINGHUB_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_ADMIN_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_SHARDS", "2")
        .env("RINGHUB_JWT_SECRET", SECRET)
        .env("RINGHUB_API_KEYS", common::admin::digest(key))
        .env("RINGHUB_LOG", "info,json")
        .env("RINGHUB_INSTANCE_ID", "logs-1")
        .env("RINGHUB_DRAIN_TIMEOUT", "2s")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let mut wait_for = |pred: &dyn Fn(&serde_json::Value) -> bool| -> serde_json::Value {
        if let Some(v) = seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the expected log line");
            seen.push(v.clone());
            if pred(&v) {
                return v;
            }
        }
    };
    let ready = wait_for(&|v| v["message"] == "ringhub ready");
    let addr: std::net::SocketAddr = ready["addr"].as_str().unwrap().parse().unwrap();
    let admin: std::net::SocketAddr = ready["admin"].as_str().unwrap().parse().unwrap();
    assert_eq!(ready["instance"], "logs-1");

    let token = token("logger");
    let mut c = open(addr, &format!("/ws?token={token}"), &[]).unwrap();
    assert_eq!(c.recv()["type"], "welcome");
    let opened = wait_for(&|v| v["message"] == "connection opened");
    for field in ["conn", "user", "shard", "instance"] {
        assert!(!opened[field].is_null(), "{field} in {opened}");
    }
    let mut api = common::admin::AdminClient::new(admin);
    let r = api.call(
        "POST",
        "/api/disconnect",
        Some(br#"{"user":"logger"}"#),
        &[("X-Correlation-Id", "corr-77")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(c.recv_close().0, 4004);
    let api_line = wait_for(&|v| v["message"] == "api request");
    assert_eq!(api_line["correlation_id"], "corr-77");
    assert_eq!(api_line["status"], 200);
    let closed = wait_for(&|v| v["message"] == "connection closed");
    assert_eq!(closed["correlation_id"], "corr-77", "{closed}");
    assert_eq!(closed["code"], 4004);
    assert!(closed["duration_ms"].is_u64());
    // A refused token is logged by reason, never by value.
    let bad = format!("{}x", token);
    assert_eq!(refused(addr, &format!("/ws?token={bad}"), &[]), 401);
    wait_for(&|v| v["message"] == "token refused");

    // The container health check.
    let health = |admin: String| {
        ringhub()
            .arg("health")
            .env("RINGHUB_ADMIN_LISTEN", admin)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(health(admin.to_string()), Some(0));
    // Nothing can listen on port 0: a connection there is always refused.
    assert_eq!(health("127.0.0.1:0".into()), Some(1));

    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    wait_for(&|v| v["message"] == "ringhub stopped");
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    let all: String = seen.iter().map(|v| v.to_string()).collect();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!all.contains(signature), "a token leaked into the logs");
    assert!(!all.contains(key), "the API key leaked into the logs");
}
