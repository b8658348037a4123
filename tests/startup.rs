//! Starting honestly and dying loudly: a start that cannot give every shard its runtime
//! fails; `driver = "auto"` falls back to epoll where io_uring is refused; `/ready` turns
//! 503 when a shard stops serving; a shutdown returns as soon as its connections are gone.
//!
//! io_uring is refused the way Docker's default seccomp profile refuses it: a filter that
//! answers `io_uring_setup` with EPERM. It is installed on a thread of its own, and the hub
//! (its threads inherit it) or the binary (a child inherits it) is started from that thread,
//! so the rest of the test process is untouched.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::KillOnDrop;
use common::*;
use ringhub::config::Driver;
use ringhub::hub::StartError;
use ringhub::route::inbox::ShardMsg;
use ringhub::Hub;

/// Runs `f` on a thread whose system calls (and those of the threads and processes it
/// starts) get EPERM for `io_uring_setup`.
fn without_io_uring<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
        let rules = [(libc::SYS_io_uring_setup, vec![])].into_iter().collect();
        let arch = std::env::consts::ARCH.try_into().expect("a seccomp arch");
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch,
        )
        .unwrap();
        let program: BpfProgram = filter.try_into().unwrap();
        seccompiler::apply_filter(&program).expect("seccomp filter installed");
        f()
    })
    .join()
    .unwrap()
}

fn ringhub(driver: &str) -> Command {
    let mut c = common::process::ringhub();
    c.env("RINGHUB_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_ADMIN_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_SHARDS", "2")
        .env("RINGHUB_JWT_SECRET", SECRET)
        .env("RINGHUB_LOG", "info,json")
        .env("RINGHUB_DRIVER", driver)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn refused_io_uring_fails_the_start() {
    let started = without_io_uring(|| Hub::start(config(Driver::IoUring)).map(|_| ()));
    match started {
        Err(StartError::IoUring { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EPERM), "{source}")
        }
        other => panic!("expected StartError::IoUring, got {other:?}"),
    }
    // The ports of the failed start are free again, and a start that can succeed does.
    start_default(Driver::Epoll).shutdown();
}

#[test]
fn binary_exits_non_zero_with_one_line_when_io_uring_is_refused() {
    let child = without_io_uring(|| ringhub("io_uring").spawn().unwrap());
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running: the start did not fail"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert!(stderr.starts_with("ringhub: "), "{stderr}");
    assert!(stderr.contains("cannot set up io_uring"), "{stderr}");
    assert!(stderr.contains("auto"), "the way out is named: {stderr}");
}

#[test]
fn auto_falls_back_to_epoll_when_io_uring_is_refused() {
    let child = without_io_uring(|| ringhub("auto").spawn().unwrap());
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .find(|v| v["message"] == "ringhub ready")
        .expect("a ready line");
    assert_eq!(ready["driver"], "epoll", "{ready}");
    let addr = ready["addr"].as_str().unwrap().parse().unwrap();
    let admin = ready["admin"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        common::admin::AdminClient::new(admin).get("/ready").status,
        200
    );
    assert_eq!(get(addr, "/ready").0, 200);
    let (mut c, _) = connect(addr, "epoll-user");
    c.subscribe("chat:1");
}

/// A shard that stops serving without being told to (here: a `Stop` nobody asked the hub
/// for, which ends its runtime as a panic would) turns `/ready` to 503 on both ports, and
/// `Hub::shard_died` names it. The hub itself goes on; the binary would exit.
fn ready_turns_503_when_a_shard_dies(driver: Driver) {
    let hub = start_default(driver);
    let mut api = hub.api();
    assert_eq!(api.get("/ready").status, 200);
    assert_eq!(get(hub.addr, "/ready").0, 200);
    assert!(hub.hub().shard_died().is_empty());
    hub.hub().shared().send(2, ShardMsg::Stop);
    let dead = hub.hub().shard_died().recv_timeout(WAIT);
    assert_eq!(dead, Ok(2));
    let ready = api.get("/ready");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["message"], "a shard stopped serving");
    // The public port's `/ready` is answered by the shards still serving: the dead one's
    // listener left the SO_REUSEPORT group (else about one connection in four would hang).
    for _ in 0..16 {
        assert_eq!(get(hub.addr, "/ready").0, 503);
    }
    assert_eq!(api.get("/health").status, 200);
    let started = Instant::now();
    hub.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shutdown with a dead shard"
    );
}

#[test]
fn a_normal_shutdown_is_no_death() {
    let hub = start_default(Driver::Epoll);
    let died = hub.hub().shard_died().clone();
    hub.shutdown();
    assert!(died.is_empty(), "a stopped shard is not a dead one");
}

/// Shutdown waits for the drain only as long as connections are left: with clients that
/// answer the 1001 at once, far less than `drain_timeout` (3 s in the test config).
fn shutdown_returns_once_connections_are_gone(driver: Driver) {
    let hub = start_default(driver);
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (mut c, _) = connect(hub.addr, &format!("leaver{i}"));
            std::thread::spawn(move || c.recv_until_close().1)
        })
        .collect();
    let started = Instant::now();
    assert_eq!(
        hub.shutdown(),
        0,
        "every connection was gone before the stop"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    for c in clients {
        assert_eq!(c.join().unwrap(), 1001);
    }
}

both_drivers!(
    ready_turns_503_when_a_shard_dies,
    shutdown_returns_once_connections_are_gone
);
