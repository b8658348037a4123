//! The bench's `fanout` scenario against a real ringhub and against the baseline hub: every
//! publication delivered, both latencies reported, and the run ending on its own once
//! everything has arrived.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SECRET: &str = "bench-secret";

fn bench_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hub.toml")
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
    // Port 0: the baseline binds whatever is free and says where on its first line.
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_baseline-hub"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--secret",
                SECRET,
                "--threads",
                "2",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("baseline-hub starts"),
    );
    // Kept open while the baseline runs, so that its stdout never turns into a broken pipe.
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("baseline-hub's first line");
    let addr = line
        .trim()
        .strip_prefix("baseline-hub ready addr=")
        .unwrap_or_else(|| panic!("not the ready line: {line:?}"))
        .to_string();
    check(&fanout(&addr, 200));
}
