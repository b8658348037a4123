//! The bench's `fanout` scenario against a real ringhub and against the baseline hub: every
//! publication delivered, both latencies reported, and the run ending on its own once
//! everything has arrived.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SECRET: &str = "bench-secret";

fn bench_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hub.toml")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `ringhub-bench fanout` with a small shape and returns its JSON line.
fn fanout(addr: &str, rate: u32) -> Value {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ringhub-bench"))
        .args(["--secret", SECRET, "--addr", addr, "--threads", "2"])
        .args(["--users", &format!("t{}", std::process::id())])
        .args(["fanout", "--subs", "40", "--channels", "4", "--pubs", "4"])
        .args(["--rate", &rate.to_string(), "--seconds", "1"])
        .stderr(Stdio::inherit())
        .output()
        .expect("ringhub-bench runs");
    assert!(out.status.success(), "ringhub-bench failed");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run ends once everything has arrived, not after waiting out its timeouts"
    );
    let line = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn check(r: &Value) {
    assert_eq!(r["scenario"], "fanout");
    assert!(r["deliveries"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["closed"], 0, "{r}");
    for which in ["latency_ms", "read_latency_ms"] {
        let p = &r[which];
        let (p50, p99) = (p["p50"].as_f64().unwrap(), p["p99"].as_f64().unwrap());
        assert!(0.0 < p50 && p50 <= p99, "{which}: {p}");
    }
    // Arrival at the socket comes no later than the read that found it.
    assert!(r["latency_ms"]["p50"].as_f64() <= r["read_latency_ms"]["p50"].as_f64());
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn fanout_against_ringhub() {
    let mut config = ringhub::Config::load(Some(bench_config()), []).expect("bench/hub.toml");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.admin_listen = "127.0.0.1:0".parse().unwrap();
    config.shards = 2;
    let hub = ringhub::Hub::start(config).expect("hub starts");
    let addr = hub.local_addr().to_string();
    check(&fanout(&addr, 200));
    hub.shutdown();
}

#[test]
fn fanout_against_the_baseline() {
    let addr = format!("127.0.0.1:{}", free_port());
    let _hub = Killed(
        Command::new(env!("CARGO_BIN_EXE_baseline-hub"))
            .args(["--listen", &addr, "--secret", SECRET, "--threads", "2"])
            .stdout(Stdio::null())
            .spawn()
            .expect("baseline-hub starts"),
    );
    wait_listening(&addr);
    check(&fanout(&addr, 200));
}
