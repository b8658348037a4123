//! What the hub under test spent over a window of load: CPU (user and kernel apart) from
//! /proc/<pid>/stat, context switches of all its threads, its /proc/<pid>/io read and write
//! counts, and, with `perf` at hand, its system calls and socket sends and receives.
//!
//! /proc/<pid>/io counts only the calls that go through the VFS (`read`, `write`,
//! `readv`, `writev`): `recv`, `sendmsg` and io_uring's operations do not show there. The
//! figures that hold whatever the hub's io path are perf's tracepoints, counted in the
//! kernel (no event leaves it): `raw_syscalls:sys_enter` for every system call,
//! `sock:sock_send_length` / `sock:sock_recv_length` for every send and receive on a socket
//! however it was asked for (a system call or an io_uring operation).

use std::io::Read;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Map, Value};

use crate::proc;

/// perf events counted, and the name each is reported under.
const EVENTS: [(&str, &str); 5] = [
    ("raw_syscalls:sys_enter", "syscalls"),
    ("sock:sock_send_length", "sends"),
    ("sock:sock_recv_length", "recvs"),
    ("io_uring:io_uring_submit_req", "ring_ops"),
    ("context-switches", "perf_context_switches"),
];

pub struct Meter {
    pid: u32,
    cpu: (u64, u64),
    io: (u64, u64),
    switches: u64,
    perf: Option<Child>,
}

impl Meter {
    /// Starts measuring `pid`; with `perf`, under `perf stat` too (None when it will not run).
    pub fn start(pid: u32, perf: bool) -> Meter {
        let perf = perf.then(|| start_perf(pid)).flatten();
        Meter {
            pid,
            cpu: proc::cpu_split(pid),
            io: syscalls_rw(pid),
            switches: context_switches(pid),
            perf,
        }
    }

    /// What was spent since `start`, over `seconds`, in total and per one of `units`
    /// (deliveries, say: `<x>_per_<unit>`).
    pub fn finish(self, seconds: f64, units: u64, unit: &str) -> Value {
        let (user, system) = proc::cpu_seconds(self.cpu, proc::cpu_split(self.pid));
        let io = syscalls_rw(self.pid);
        let mut counts = Map::new();
        counts.insert("user_s".into(), json!(user));
        counts.insert("system_s".into(), json!(system));
        counts.insert("io_syscr".into(), json!(io.0 - self.io.0));
        counts.insert("io_syscw".into(), json!(io.1 - self.io.1));
        counts.insert(
            "context_switches".into(),
            json!(context_switches(self.pid).saturating_sub(self.switches)),
        );
        if let Some(perf) = self.perf {
            for (name, n) in stop_perf(perf) {
                counts.insert(name.into(), json!(n));
            }
        }
        let per = units.max(1) as f64;
        let mut out = Map::new();
        out.insert("seconds".into(), json!(seconds));
        out.insert("user_percent".into(), json!(user / seconds * 100.0));
        out.insert("system_percent".into(), json!(system / seconds * 100.0));
        out.insert(format!("user_us_per_{unit}"), json!(user * 1e6 / per));
        out.insert(format!("system_us_per_{unit}"), json!(system * 1e6 / per));
        out.insert(
            format!("cpu_us_per_{unit}"),
            json!((user + system) * 1e6 / per),
        );
        for (k, v) in &counts {
            if let (Some(n), false) = (v.as_u64(), k.ends_with("_s")) {
                out.insert(format!("{k}_per_{unit}"), json!(n as f64 / per));
            }
        }
        if let Some(sends) = counts.get("sends").and_then(Value::as_u64) {
            out.insert(
                format!("{unit}_per_send"),
                json!(units as f64 / sends.max(1) as f64),
            );
        }
        out.extend(counts);
        Value::Object(out)
    }
}

/// `syscr` and `syscw` of /proc/<pid>/io (0 where it cannot be read).
fn syscalls_rw(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("syscr:"), field("syscw:"))
}

/// Voluntary and involuntary context switches of every thread of `pid`.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

fn start_perf(pid: u32) -> Option<Child> {
    let events: Vec<&str> = EVENTS.iter().map(|(e, _)| *e).collect();
    let child = Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-p",
            &pid.to_string(),
            "-e",
            &events.join(","),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    match child {
        Ok(c) => {
            // perf attaches to the hub's threads before it counts: give it that moment.
            std::thread::sleep(std::time::Duration::from_millis(200));
            Some(c)
        }
        Err(e) => {
            eprintln!("  perf stat did not start ({e}): no system call counts");
            None
        }
    }
}

/// Stops `perf stat` (SIGINT makes it print its counts) and reads them.
fn stop_perf(mut perf: Child) -> Vec<(&'static str, u64)> {
    // SAFETY: kill takes no pointers; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(perf.id() as libc::pid_t, libc::SIGINT) };
    let mut text = String::new();
    if let Some(mut err) = perf.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    let _ = perf.wait();
    let counts: Vec<_> = text
        .lines()
        .filter_map(|l| {
            // CSV: value,unit,event,...; "<not counted>" or "<not supported>" are left out.
            let mut f = l.split(',');
            let (value, _, event) = (f.next()?, f.next()?, f.next()?);
            let name = EVENTS.iter().find(|(e, _)| *e == event)?.1;
            Some((name, value.parse().ok()?))
        })
        .collect();
    if counts.is_empty() {
        eprintln!("  perf stat counted nothing: {}", text.trim());
    }
    counts
}
