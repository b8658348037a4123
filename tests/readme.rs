//! The README's first exchange, run as the README writes it, against the binary started
//! as the README starts it (no configuration): the README cannot drift from the hub.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{demo_url, ringhub, KillOnDrop};
use serde_json::Value;

/// The indented lines after "Open that URL": `> ` lines are sent, the others expected.
fn exchange() -> Vec<(bool, String)> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("Open that URL")
        .expect("the README's first example");
    readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with("    {"))
        .take_while(|l| l.starts_with("    "))
        .map(|l| match l.trim().strip_prefix("> ") {
            Some(sent) => (true, sent.to_string()),
            None => (false, l.trim().to_string()),
        })
        .collect()
}

#[test]
fn the_readme_example_runs_as_written() {
    let steps = exchange();
    assert!(steps.len() >= 5, "the example was found: {steps:?}");
    let mut hub = ringhub();
    // The README's command listens on 8080 and 9090; here on free ports, nothing else set.
    let child = hub
        .env("RINGHUB_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_ADMIN_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (addr, path) = loop {
        assert!(Instant::now() < deadline, "no demo URL logged");
        let line = lines.next().expect("a log line").unwrap();
        if let Some(url) = demo_url(&line) {
            break url;
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let mut c = common::open(addr, &path, &[]).expect("the demo URL connects");
    for (sent, text) in steps {
        if sent {
            c.send_text(&text);
            continue;
        }
        let want: Value = serde_json::from_str(&text).unwrap();
        let got = c.recv();
        if want["type"] == "welcome" {
            // Ids, instance, shard and expiry differ from run to run.
            assert_eq!(got["type"], "welcome", "{got}");
            assert_eq!(got["user"], want["user"], "{got}");
        } else {
            assert_eq!(got, want, "the README says {text}");
        }
    }
}
