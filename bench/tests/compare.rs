//! Every scenario of `bench/compare.sh` runs against every hub: ringhub, the baseline, and
//! uWebSockets.js (bench/uws), with tiny numbers (`QUICK=1`). What they measure is for
//! PERFORMANCE.md; this only checks that each one runs and reports.
//!
//! The three hubs run side by side, one `compare.sh` each. uWS needs `npm ci` in bench/uws
//! (done here when node_modules is missing); without npm it is skipped, saying so, except
//! under CI (`CI=true`), where that is a failure. ringhub's binary is the workspace's: it is
//! there after `cargo test --workspace` (or `cargo build`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ringhub-bench"))
        .parent()
        .expect("a directory")
        .to_path_buf()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Is bench/uws ready to run (`npm ci` done here if it was not)?
fn uws_ready() -> bool {
    let dir = bench_dir().join("uws");
    if dir.join("node_modules").is_dir() {
        return true;
    }
    let ok = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || !in_ci(),
        "npm ci in bench/uws failed (required under CI)"
    );
    ok
}

fn perf_counts_syscalls() -> bool {
    Command::new("perf")
        .args(["stat", "-e", "raw_syscalls:sys_enter", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The scenarios `compare.sh` reports for `hub`, by name.
fn expected(hub: &str) -> Vec<&'static str> {
    let mut names = vec!["fanout1m", "fanout100", "storm", "idle19k"];
    if perf_counts_syscalls() {
        names.extend(["fanout1m-perf", "fanout100-perf"]);
    }
    names.extend(["connect", "fanout-max", "fanout-100k", "idle", "sustained"]);
    if hub != "uws" {
        names.push("heartbeat"); // uWS cannot ping every second
    }
    names
}

fn check(hub: &str, r: &Value) {
    let what = format!("{hub} {}: {r}", r["name"]);
    match r["scenario"].as_str() {
        Some("fanout") => {
            assert!(r["deliveries"].as_u64().unwrap_or(0) > 0, "{what}");
            if r["rate"].is_number() {
                assert_eq!(r["closed"], 0, "{what}"); // at --rate max a hub may close one
            }
            if r["name"] != "fanout-max" && r["name"] != "fanout-100k" && r["name"] != "sustained" {
                assert!(r["hub_cost"]["user_us_per_delivery"].is_number(), "{what}");
            }
            if r["name"].as_str().is_some_and(|n| n.ends_with("-perf")) {
                assert!(r["hub_cost"]["syscalls_per_delivery"].is_number(), "{what}");
                assert!(r["hub_cost"]["sends_per_delivery"].is_number(), "{what}");
            }
        }
        Some("connect") => assert_eq!(r["ok"], r["conns"], "{what}"),
        Some("idle") => {
            assert!(r["conns"].as_u64().unwrap_or(0) > 0, "{what}");
            assert!(r["kib_per_conn"].is_number(), "{what}");
        }
        _ => panic!("not a scenario's line: {what}"),
    }
    if hub == "uws" {
        assert!(r["hub_dropped"].is_u64(), "uWS's drop count: {what}");
    }
}

#[test]
fn every_scenario_runs_against_every_hub() {
    let mut hubs = vec!["baseline"];
    if bin_dir().join("ringhub").is_file() {
        hubs.push("ringhub");
    } else {
        assert!(!in_ci(), "no ringhub binary beside ringhub-bench");
        eprintln!(
            "skipping ringhub: no binary beside ringhub-bench (cargo test --workspace builds it)"
        );
    }
    if uws_ready() {
        hubs.push("uws");
    } else {
        eprintln!("skipping uWS: bench/uws/node_modules is missing and npm ci failed");
    }
    let runs: Vec<_> = hubs
        .iter()
        .map(|hub| {
            let child = Command::new(bench_dir().join("compare.sh"))
                .arg("1")
                .env("QUICK", "1")
                .env("MODES", "shared")
                .env("HUBS", hub)
                .env("BIN", bin_dir())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("compare.sh starts");
            (*hub, child)
        })
        .collect();
    for (hub, child) in runs {
        let out = child.wait_with_output().expect("compare.sh runs");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(
            out.status.success(),
            "compare.sh for {hub} failed ({}; its stderr is above), having printed:\n{text}",
            out.status
        );
        let rows: Vec<Value> = text
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        for name in expected(hub) {
            let r = rows
                .iter()
                .find(|r| r["name"] == name)
                .unwrap_or_else(|| panic!("{hub}: no {name} line in\n{text}"));
            assert_eq!(r["hub"], hub);
            check(hub, r);
        }
        assert!(text.contains("| measure |"), "{hub}: no table in\n{text}");
    }
}
