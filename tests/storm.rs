//! A reconnect storm: 19,000 clients on hub A (its own process), A drains (SIGTERM), and
//! every client reconnects to hub B, as a load balancer would send it (a draining hub
//! refuses new upgrades), after the `after_ms` of its `reconnect` frame. Zero failed
//! connects, every client told `reconnect` then closed with 1001, A exits 0. The timings
//! are printed (docs/faults.md).
//!
//! About 25 s in a debug build on 2 cores (8 s in release), ~140 MB in all. This process
//! holds ~19,000 files: the test is skipped, saying so, when the open-files limit is lower.
//! The figures of docs/faults.md come from
//!
//!   cargo test --release --test storm -- --nocapture

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::lean::{connect, source_ip, Failure};
use common::process::{ringhub, spawn_ready, KillOnDrop};
use common::{token, SECRET};

const CLIENTS: usize = 19_000;
/// Connections opening at once while the clients first connect to A.
const IN_FLIGHT: usize = 500;
const JITTER: &str = "3s";
/// The longest any one attempt may take before it counts as failed.
/// (Generous: a full accept queue drops SYNs, which the kernel resends after 1, 3, 7 s...)
const ATTEMPT: Duration = Duration::from_secs(60);

fn hub(name: &str) -> (KillOnDrop, SocketAddr) {
    let mut cmd = ringhub();
    cmd.env("RINGHUB_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_ADMIN_LISTEN", "127.0.0.1:0")
        .env("RINGHUB_SHARDS", "2")
        .env("RINGHUB_INSTANCE_ID", name)
        .env("RINGHUB_JWT_SECRET", SECRET)
        .env("RINGHUB_CONNECTS_PER_SECOND_PER_IP", "0")
        .env("RINGHUB_RECONNECT_JITTER", JITTER)
        .env("RINGHUB_DRAIN_TIMEOUT", "60s")
        .env("RINGHUB_PING_INTERVAL", "120s")
        .env("RINGHUB_LOG", "info");
    spawn_ready(cmd)
}

/// What one client went through.
#[derive(Default)]
struct Tally {
    failures: HashMap<(&'static str, Failure), usize>,
    /// `after_ms` of each `reconnect` frame.
    after: Vec<u64>,
    /// From the end of `after_ms` to `welcome` on B.
    reconnect: Vec<Duration>,
    /// From SIGTERM to `welcome` on B.
    back: Vec<Duration>,
}

/// The soft limit of open files, raised to the hard limit first.
fn open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            }
        }
    }
    lim.rlim_cur
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort_unstable();
    v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

#[test]
fn nineteen_thousand_clients_reconnect_after_a_drain() {
    let files = open_files_limit();
    if files < CLIENTS as u64 + 500 {
        eprintln!("SKIPPED: {CLIENTS} clients need more open files than the limit of {files}");
        return;
    }
    let (mut a, addr_a) = hub("storm-a");
    let (_b, addr_b) = hub("storm-b");
    let tokens: Vec<String> = (0..CLIENTS).map(|i| token(&format!("storm-{i}"))).collect();
    let on_a = Arc::new(AtomicUsize::new(0));
    let on_b = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let term: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let clients = {
        let (on_a, on_b, ended, term, tally) = (
            on_a.clone(),
            on_b.clone(),
            ended.clone(),
            term.clone(),
            tally.clone(),
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
                let mut held = Vec::new();
                for (i, token) in tokens.into_iter().enumerate() {
                    let (gate, on_a, on_b, ended, term, tally) = (
                        gate.clone(),
                        on_a.clone(),
                        on_b.clone(),
                        ended.clone(),
                        term.clone(),
                        tally.clone(),
                    );
                    held.push(tokio::spawn(async move {
                        let fail = |stage, f| {
                            *tally
                                .lock()
                                .unwrap()
                                .failures
                                .entry((stage, f))
                                .or_default() += 1;
                        };
                        let permit = gate.acquire().await.unwrap();
                        let first = connect(addr_a, source_ip(i), &token, ATTEMPT).await;
                        drop(permit);
                        let mut conn = match first {
                            Ok(c) => c,
                            Err(f) => return fail("connect to A", f),
                        };
                        on_a.fetch_add(1, Ordering::Relaxed);
                        // `reconnect`, then the 1001 close.
                        let after_ms = match conn.frame().await {
                            Ok(f) if f.opcode == 1 && f.json()["type"] == "reconnect" => {
                                f.json()["after_ms"].as_u64()
                            }
                            _ => None,
                        };
                        let Some(after_ms) = after_ms else {
                            return fail("reconnect frame", Failure::Unexpected);
                        };
                        match conn.frame().await {
                            Ok(f)
                                if f.opcode == 8
                                    && f.payload.get(..2) == Some(&1001u16.to_be_bytes()[..]) => {}
                            _ => return fail("1001 close", Failure::Unexpected),
                        }
                        drop(conn);
                        tokio::time::sleep(Duration::from_millis(after_ms)).await;
                        let due = Instant::now();
                        let conn = match connect(addr_b, source_ip(i), &token, ATTEMPT).await {
                            Ok(c) => c,
                            Err(f) => return fail("reconnect to B", f),
                        };
                        let term = term.lock().unwrap().expect("SIGTERM was sent");
                        {
                            let mut t = tally.lock().unwrap();
                            t.after.push(after_ms);
                            t.reconnect.push(due.elapsed());
                            t.back.push(term.elapsed());
                        }
                        on_b.fetch_add(1, Ordering::Relaxed);
                        // Held until every client is on B.
                        while ended.load(Ordering::Relaxed) == 0 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        drop(conn);
                    }));
                }
                for h in held {
                    h.await.unwrap();
                }
            });
        })
    };
    let failed = |tally: &Mutex<Tally>| tally.lock().unwrap().failures.values().sum::<usize>();
    while on_a.load(Ordering::Relaxed) + failed(&tally) < CLIENTS {
        std::thread::sleep(Duration::from_millis(20));
    }
    let connected = started.elapsed();
    println!(
        "{} clients connected to A in {connected:?} ({:.0}/s, {IN_FLIGHT} in flight)",
        on_a.load(Ordering::Relaxed),
        on_a.load(Ordering::Relaxed) as f64 / connected.as_secs_f64()
    );
    *term.lock().unwrap() = Some(Instant::now());
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(a.0.id() as i32, libc::SIGTERM) };
    while on_b.load(Ordering::Relaxed) + failed(&tally) < CLIENTS {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = a.0.wait().unwrap();
    ended.store(1, Ordering::Relaxed);
    clients.join().unwrap();

    let mut t = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    let max_after = t.after.iter().max().copied().unwrap_or(0);
    println!(
        "after_ms: {} reconnect frames, max {max_after} (reconnect_jitter {JITTER})",
        t.after.len()
    );
    println!(
        "reconnect to B, from the end of after_ms to welcome: P50 {:?}, P99 {:?}, max {:?}",
        pct(&mut t.reconnect, 0.5),
        pct(&mut t.reconnect, 0.99),
        pct(&mut t.reconnect, 1.0)
    );
    println!(
        "all {} clients on B {:?} after SIGTERM",
        on_b.load(Ordering::Relaxed),
        pct(&mut t.back, 1.0)
    );
    assert!(t.failures.is_empty(), "failed: {:?}", t.failures);
    assert_eq!(on_b.load(Ordering::Relaxed), CLIENTS);
    assert_eq!(status.code(), Some(0), "A exits 0 once drained");
}
