//! Scenarios about what connections cost while they sit: `idle` (the hub's memory and CPU
//! per idle connection) and `presence` (a query over a large channel).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use crate::client::{connect, source_ip, text_frame, Failure};
use crate::{open_many, percentiles, proc, token, Cli};

pub async fn run_idle(cli: &Cli, n: usize, pid: u32, seconds: u64) -> serde_json::Value {
    let before = proc::rss_kib(pid);
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let subscribed = Arc::new(AtomicU64::new(0));
    let pings = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let mut failures: HashMap<String, usize> = HashMap::new();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let token = token(&cli.secret, &format!("{}-i-{i}", cli.users));
        let (addr, subscribed, pings, closed) =
            (cli.addr, subscribed.clone(), pings.clone(), closed.clone());
        tasks.push(tokio::spawn(async move {
            let (mut c, _) =
                connect(addr, source_ip(i), &token, Duration::from_secs(30), None).await?;
            drop(permit);
            // every connection subscribes (100 channels), as a game client would, then
            // idles, answering the hub's pings
            let sub = text_frame(
                format!(
                    r#"{{"id":1,"type":"subscribe","channel":"bench:idle-{}"}}"#,
                    i % 100
                )
                .as_bytes(),
            );
            c.send(&sub).await;
            match c.next_frame().await {
                Some((1, p)) if p.starts_with(br#"{"id":1,"type":"subscribed""#) => {
                    subscribed.fetch_add(1, Ordering::Relaxed)
                }
                _ => return Err(Failure::Closed),
            };
            loop {
                match c.next_frame_counting_pings(&pings).await {
                    Some(_) => {}
                    None => {
                        closed.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while (subscribed.load(Ordering::Relaxed) as usize) < n && Instant::now() < deadline {
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let conns = subscribed.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = proc::rss_kib(pid);
    let per_conn = (after.saturating_sub(before)) as f64 / conns.max(1) as f64;
    let (c0, p0) = (proc::cpu_split(pid), pings.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (user_s, system_s) = proc::cpu_seconds(c0, proc::cpu_split(pid));
    let cpu_s = user_s + system_s;
    let pinged = pings.load(Ordering::Relaxed) - p0;
    let cpu = cpu_s / seconds as f64 * 100.0;
    let per_ping = |s: f64| {
        if pinged > 0 {
            s * 1e6 / pinged as f64
        } else {
            0.0
        }
    };
    let (us_per_ping, user_us, system_us) = (per_ping(cpu_s), per_ping(user_s), per_ping(system_s));
    for t in tasks {
        if t.is_finished() {
            if let Ok(Err(f)) = t.await {
                *failures.entry(format!("{f:?}").to_lowercase()).or_insert(0) += 1;
            }
        } else {
            t.abort();
        }
    }
    eprintln!("idle: {conns} connections, RSS {before} KiB -> {after} KiB: {per_conn:.2} KiB per connection");
    eprintln!("  hub CPU while idle: {cpu:.2}% of one core over {seconds} s; {pinged} pings answered ({us_per_ping:.2} us of hub CPU per ping: {user_us:.2} user, {system_us:.2} system); closed {}", closed.load(Ordering::Relaxed));
    json!({"scenario": "idle", "conns": conns, "failures": failures, "rss_before_kib": before,
           "rss_after_kib": after, "kib_per_conn": per_conn, "idle_cpu_percent": cpu,
           "pings": pinged, "hub_cpu_us_per_ping": us_per_ping,
           "hub_user_us_per_ping": user_us, "hub_system_us_per_ping": system_us, "closed": closed.load(Ordering::Relaxed)})
}

pub async fn run_presence(cli: &Cli, members: usize, queries: usize) -> serde_json::Value {
    let opened = open_many(cli, cli.addr, members, 256, "m").await;
    let (mut conns, failures) = (opened.conns, opened.failures);
    let sub = text_frame(br#"{"id":1,"type":"subscribe","channel":"presence:big"}"#);
    for c in conns.iter_mut() {
        c.send(&sub).await;
    }
    // members keep reading (joins of the others arrive), answering pings
    let mut readers = Vec::new();
    for mut c in conns {
        readers.push(tokio::spawn(async move {
            while c.next_frame().await.is_some() {}
        }));
    }
    let mut asker = open_many(cli, cli.addr, 1, 1, "asker").await.conns;
    let mut asker = asker.pop().expect("asker connected");
    let query = text_frame(br#"{"id":7,"type":"presence","channel":"presence:big"}"#);
    // wait until every member is present
    let mut seen = 0;
    for _ in 0..200 {
        asker.send(&query).await;
        let (_, p) = asker.next_frame().await.expect("presence reply");
        seen = p.windows(8).filter(|w| w == br#""conns":"#).count();
        if seen >= members {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut bytes = 0;
    for _ in 0..queries {
        let t = Instant::now();
        asker.send(&query).await;
        let (_, p) = asker.next_frame().await.expect("presence reply");
        hist.record(t.elapsed().as_micros() as u64).unwrap();
        bytes = p.len();
    }
    for r in readers {
        r.abort();
    }
    let p = percentiles(&hist, 1000.0);
    eprintln!(
        "presence: {seen} members, reply {bytes} bytes; query ms: p50 {} p99 {} max {}",
        p["p50"], p["p99"], p["max"]
    );
    json!({"scenario": "presence", "members": seen, "failures": failures, "reply_bytes": bytes, "query_ms": p})
}
