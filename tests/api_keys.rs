//! Named, scoped API keys (docs/api.md#keys): a key outside its scopes gets 403 naming the
//! scope, two keys of one name both work, metrics and logs carry the name only, and the
//! key file is read again on reload: in-process through `Hub::reloads`, and in the binary
//! on a real `SIGHUP`, where a bad file keeps the old keys.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::admin::{digest, AdminClient};
use common::process::{ringhub, KillOnDrop};
use common::*;
use ringhub::config::Driver;
use serde_json::{json, Value};

/// A key file's entry.
fn entry(name: &str, key: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[[keys]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = [{}]\n",
        digest(key),
        scopes.join(", ")
    )
}

fn key_file(test: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("ringhub-keys-{}-{test}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn client(admin: std::net::SocketAddr, key: &str) -> AdminClient {
    let mut c = AdminClient::new(admin);
    c.key = Some(key.into());
    c
}

#[test]
fn scopes_rotation_and_names_in_metrics() {
    let file = key_file(
        "scopes",
        &(entry("publisher", "pub-key-1", &["publish"])
            + &entry("publisher", "pub-key-2", &["publish", "read"])
            + &entry("moderator", "mod-key", &["revoke", "presence"])),
    );
    let mut config = config(Driver::IoUring);
    config.api_keys_file = Some(file.clone());
    let hub = start(config);
    let (mut sub, _) = connect(hub.addr, "watcher");
    sub.subscribe("chat:keys");

    // Both keys of one name publish.
    for key in ["pub-key-1", "pub-key-2"] {
        let r = client(hub.admin, key).post(
            "/api/publish",
            &json!({"channel":"chat:keys","data":{"by":key}}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(sub.recv()["data"]["by"], key);
    }
    // Outside its scopes: 403 naming the scope.
    let r = client(hub.admin, "pub-key-1").get("/api/info");
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");
    assert_eq!(r.json()["scope"], "read");
    assert!(
        r.json()["message"].as_str().unwrap().contains("read"),
        "{}",
        r.body
    );
    assert_eq!(client(hub.admin, "pub-key-2").get("/api/info").status, 200);
    let r =
        client(hub.admin, "mod-key").post("/api/publish", &json!({"channel":"chat:keys","data":1}));
    assert_eq!(
        (r.status, r.json()["scope"].as_str()),
        (403, Some("publish"))
    );
    let r = client(hub.admin, "mod-key").post(
        "/api/subscribe",
        &json!({"user":"watcher","channel":"chat:x"}),
    );
    assert_eq!(
        (r.status, r.json()["scope"].as_str()),
        (403, Some("subscriptions"))
    );
    let r = client(hub.admin, "mod-key").post("/api/disconnect", &json!({"user":"nobody"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        client(hub.admin, "mod-key")
            .get("/api/presence/room:keys")
            .status,
        200
    );
    // The plain digest of `api_keys` can do everything.
    assert_eq!(hub.api().get("/api/info").status, 200);
    // A wrong key is still 401, before any scope.
    assert_eq!(client(hub.admin, "pub-key-3").get("/api/info").status, 401);

    let metrics = hub.api().get("/metrics").body;
    let line = "ringhub_api_key_requests_total{key=\"publisher\",status=\"200\"} 3";
    assert!(metrics.contains(line), "{metrics}");
    assert!(metrics.contains("ringhub_api_key_requests_total{key=\"moderator\",status=\"403\"} 2"));
    assert!(
        !metrics.contains(&digest("pub-key-1")),
        "a digest in the metrics"
    );
    assert!(!metrics.contains("pub-key-1"), "a key in the metrics");

    // Reload in-process: the file changes, the hub reads it again.
    std::fs::write(&file, entry("publisher", "pub-key-3", &["admin"])).unwrap();
    assert_eq!(hub.hub().reloads().run(), 0);
    assert_eq!(client(hub.admin, "pub-key-3").get("/api/info").status, 200);
    assert_eq!(client(hub.admin, "pub-key-1").get("/api/info").status, 401);
    // A bad file keeps the keys in force.
    std::fs::write(&file, "[[keys]]\nname = \"broken\"\n").unwrap();
    assert_eq!(hub.hub().reloads().run(), 1);
    assert_eq!(client(hub.admin, "pub-key-3").get("/api/info").status, 200);
    let metrics = hub.api().get("/metrics").body;
    assert!(
        metrics.contains("ringhub_api_key_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("ringhub_api_key_reloads_total{result=\"ok\"} 1"));
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_bad_key_file_does_not_start() {
    let file = key_file(
        "bad",
        "[[keys]]\nname = \"x\"\nsha256 = \"00\"\nscopes = [\"read\"]\n",
    );
    let mut config = config(Driver::Epoll);
    config.api_keys_file = Some(file.clone());
    let e = ringhub::Hub::start(config)
        .err()
        .expect("a bad key file is refused");
    assert!(e.to_string().contains("api_keys_file"), "{e}");
    let _ = std::fs::remove_file(file);
}

/// The binary reloads the key file on SIGHUP, keeps the old keys when the file is bad, and
/// logs key names, never keys or digests.
#[test]
fn sighup_reloads_the_key_file() {
    let file = key_file("sighup", &entry("backend", "first-key", &["read"]));
    let mut child = ringhub()
        .env("RINGHUB_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_ADMIN_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_SHARDS", "1")
        .env("RINGHUB_JWT_SECRET", SECRET)
        .env("RINGHUB_API_KEYS_FILE", &file)
        .env("RINGHUB_LOG", "info,json")
        .env("RINGHUB_DRAIN_TIMEOUT", "1s")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<Value> = Vec::new();
    let mut wait_for = |pred: &dyn Fn(&Value) -> bool| -> Value {
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
    let admin: std::net::SocketAddr = ready["admin"].as_str().unwrap().parse().unwrap();
    let hup = || {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.0.id() as i32, libc::SIGHUP) };
    };
    assert_eq!(client(admin, "first-key").get("/api/info").status, 200);
    let line = wait_for(&|v| v["message"] == "api request");
    assert_eq!(line["key"], "backend", "{line}");
    assert_eq!(client(admin, "second-key").get("/api/info").status, 401);

    // Rotation: the new key beside the old, then the old one gone.
    std::fs::write(
        &file,
        entry("backend", "first-key", &["read"]) + &entry("backend", "second-key", &["read"]),
    )
    .unwrap();
    hup();
    wait_for(&|v| v["message"] == "reloaded");
    assert_eq!(client(admin, "first-key").get("/api/info").status, 200);
    assert_eq!(client(admin, "second-key").get("/api/info").status, 200);
    std::fs::write(&file, entry("backend", "second-key", &["read"])).unwrap();
    // `ringhub reload` checks the configuration, then sends the signal.
    let status = ringhub()
        .args(["reload", "--pid", &child.0.id().to_string()])
        .env("RINGHUB_API_KEYS_FILE", &file)
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(&|v| v["message"] == "reloaded");
    assert_eq!(client(admin, "first-key").get("/api/info").status, 401);
    assert_eq!(client(admin, "second-key").get("/api/info").status, 200);

    // A bad file: logged, counted, and the keys in force stay.
    std::fs::write(&file, "not a key file [").unwrap();
    hup();
    let failed = wait_for(&|v| v["message"] == "reload failed; keeping the previous one");
    assert_eq!(failed["what"], "api keys", "{failed}");
    assert_eq!(client(admin, "second-key").get("/api/info").status, 200);
    let metrics = AdminClient::new(admin).without_key().get("/metrics").body;
    assert!(
        metrics.contains("ringhub_api_key_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ringhub_api_key_reloads_total{result=\"ok\"} 2"),
        "{metrics}"
    );

    let all: String = seen.iter().map(|v| v.to_string()).collect();
    for secret in ["first-key", "second-key"] {
        assert!(!all.contains(secret), "a key in the logs");
        assert!(!all.contains(&digest(secret)), "a digest in the logs");
    }
    drop(child);
    let _ = std::fs::remove_file(file);
}
