//! `ringhub-bench`: connect storms, fan-out latency and throughput, idle memory and CPU,
//! against a running hub (ringhub, or anything speaking the same protocol subset).

mod client;
mod envelope;
mod fanout;
mod flood;
mod meter;
mod opaque;
mod proc;
mod recover;
mod resident;
mod tls;

use fanout::{run_fanout, Shape};
use resident::{run_idle, run_presence};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::json;

use client::{connect, source_ip, Conn, Failure};

#[derive(Parser)]
#[command(name = "ringhub-bench", about = "Load generator for ringhub")]
struct Cli {
    /// The hub's public address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The hub's HS256 secret, to mint tokens.
    #[arg(long, env = "RINGHUB_JWT_SECRET")]
    secret: String,
    /// Worker threads of the bench's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Prefix of user names (so that several runs do not collide).
    #[arg(long, default_value = "bench")]
    users: String,
    /// Reach the hub over TLS (`wss://`, as `localhost`), trusting this PEM CA file.
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// Offer this `Sec-WebSocket-Extensions` on every connection (e.g. `permessage-deflate`,
    /// against a hub with `compression = true`).
    #[arg(long)]
    extensions: Option<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Clone)]
enum Scenario {
    /// N connections, C in flight: time from TCP connect to `welcome`.
    Connect {
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// The hub's process id: also report its CPU per connection opened (from /proc),
        /// and the bench's own.
        #[arg(long)]
        pid: Option<u32>,
        /// Opaque tokens instead of JWTs: for a hub with a token store or a connect proxy.
        #[arg(long)]
        opaque: bool,
        /// With --opaque: write every token to the hub's token store at this Redis
        /// (host:port) before the storm.
        #[arg(long)]
        store_redis: Option<SocketAddr>,
        /// The token store's key prefix.
        #[arg(long, default_value = "ringhub:token:")]
        store_prefix: String,
        /// With --opaque: serve the hub's connect proxy here (a local backend that answers
        /// every token at once).
        #[arg(long)]
        proxy_listen: Option<SocketAddr>,
    },
    /// N idle subscribed connections: the hub's RSS per connection and its idle CPU.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        /// The hub's process id (RSS and CPU are read from /proc).
        #[arg(long)]
        pid: u32,
        /// Seconds over which idle CPU is measured.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// M members in one presence channel; Q presence queries timed one after another.
    Presence {
        #[arg(long, default_value_t = 10_000)]
        members: usize,
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
    /// A subscriber misses M publications on a channel with history and recovers them
    /// with `since`, Q times.
    Recover {
        #[arg(long, default_value_t = 100)]
        missed: u64,
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
    /// N subscribed clients drop at once and reconnect (C in flight): the time until all
    /// are subscribed again; `--recover` resubscribes with `since` on channels with history.
    Storm {
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        #[arg(long, default_value_t = 1000)]
        concurrency: usize,
        #[arg(long)]
        recover: bool,
    },
    /// The relay envelope: RH1 against a protobuf message, encode and decode timed here
    /// (no hub needed; --secret is still required by the command line, any value).
    Envelope {
        #[arg(long, default_value_t = 1_000_000)]
        iterations: u32,
    },
    /// S subscribers over K channels, P publishers at R messages/s of B bytes each.
    /// Latency is reported to the frame's arrival at the subscriber's socket (the kernel's
    /// receive stamp) and, beside it, to the bench's read of it.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subs: usize,
        #[arg(long, default_value_t = 1)]
        channels: usize,
        #[arg(long, default_value_t = 1)]
        pubs: usize,
        /// Messages per second per publisher, or `max`.
        #[arg(long, default_value = "100")]
        rate: String,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Channel names: `<prefix>-<i>` (`hist:fan` for channels with history).
        #[arg(long, default_value = "bench:fan")]
        prefix: String,
        /// Connect the subscribers to this instance instead (the `relay` scenario: the
        /// publishers' instance reaches them through Redis).
        #[arg(long)]
        sub_addr: Option<SocketAddr>,
        /// The hub's process id: also report its CPU (user and kernel apart), context
        /// switches and read/write calls per delivery, from /proc.
        #[arg(long)]
        pid: Option<u32>,
        /// With --pid: count the hub's system calls and socket sends under `perf stat`.
        #[arg(long)]
        perf: bool,
        /// Flood this admin address's server API (`GET /api/info`, back to back) for the
        /// whole run, with --api-key, over --api-conns keep-alive connections.
        #[arg(long)]
        api_flood: Option<SocketAddr>,
        #[arg(long, default_value = "")]
        api_key: String,
        #[arg(long, default_value_t = 32)]
        api_conns: usize,
        /// The subscribers speak `ringhub.v1.proto` (binary frames); the publishers stay JSON.
        #[arg(long)]
        proto: bool,
    },
}

fn token(secret: &str, user: &str) -> String {
    ringhub::auth::mint(
        secret.as_bytes(),
        &ringhub::auth::MintOptions {
            user: user.into(),
            ttl: 24 * 3600,
            channels: vec!["*".into()],
            publish: vec!["*".into()],
            ..Default::default()
        },
    )
}

fn main() {
    let cli = Cli::parse();
    if let Some(ca) = &cli.tls_ca {
        if let Err(e) = tls::configure(ca) {
            eprintln!("ringhub-bench: --tls-ca {}: {e}", ca.display());
            std::process::exit(2);
        }
    }
    if let Some(e) = &cli.extensions {
        let _ = client::EXTRA_HEADERS.set(format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    let nofile = proc::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads)
        .enable_all()
        .build()
        .unwrap();
    eprintln!(
        "ringhub-bench: {} threads, open-file limit {nofile}",
        cli.threads
    );
    let result = rt.block_on(async {
        match cli.scenario.clone() {
            Scenario::Connect {
                conns,
                concurrency,
                pid,
                opaque,
                store_redis,
                store_prefix,
                proxy_listen,
            } => {
                let tokens = if opaque {
                    let tokens: Vec<String> = (0..conns)
                        .map(|i| format!("{}-c-{i}-opaque", cli.users))
                        .collect();
                    if let Some(redis) = store_redis {
                        opaque::fill_store(redis, &store_prefix, &tokens).await;
                    }
                    if let Some(addr) = proxy_listen {
                        opaque::serve_proxy(addr).await;
                    }
                    tokens
                } else {
                    mint_all(&cli, conns, "c")
                };
                run_connect(&cli, tokens, concurrency, pid).await
            }
            Scenario::Idle {
                conns,
                pid,
                seconds,
            } => run_idle(&cli, conns, pid, seconds).await,
            Scenario::Presence { members, queries } => run_presence(&cli, members, queries).await,
            Scenario::Recover { missed, queries } => {
                recover::run_recover(&cli, missed, queries).await
            }
            Scenario::Storm {
                conns,
                concurrency,
                recover,
            } => recover::run_storm(&cli, conns, concurrency, recover).await,
            Scenario::Envelope { iterations } => envelope::run_envelope(iterations),
            Scenario::Fanout {
                subs,
                channels,
                pubs,
                rate,
                size,
                seconds,
                prefix,
                sub_addr,
                pid,
                perf,
                api_flood,
                api_key,
                api_conns,
                proto,
            } => {
                let rate = if rate == "max" {
                    None
                } else {
                    Some(rate.parse::<u64>().expect("--rate N or max"))
                };
                let shape = Shape {
                    subs,
                    channels,
                    pubs,
                    rate,
                    size,
                    seconds,
                    pid,
                    perf,
                    flood: api_flood.map(|admin| flood::Flood {
                        admin,
                        key: api_key,
                        conns: api_conns,
                    }),
                    proto,
                };
                run_fanout(&cli, shape, &prefix, sub_addr).await
            }
        }
    });
    println!("{result}");
}

fn percentiles(h: &Histogram<u64>, unit: f64) -> serde_json::Value {
    json!({
        "p50": h.value_at_quantile(0.50) as f64 / unit,
        "p90": h.value_at_quantile(0.90) as f64 / unit,
        "p99": h.value_at_quantile(0.99) as f64 / unit,
        "p999": h.value_at_quantile(0.999) as f64 / unit,
        "max": h.max() as f64 / unit,
    })
}

/// What [`open_many`] opened.
struct Opened {
    /// In the order of their index (the `i` in their user name).
    conns: Vec<Conn>,
    /// µs from TCP connect to `welcome`, per connection.
    hist: Histogram<u64>,
    /// µs from TCP connect to the bench seeing it established (see [`client::Opening`]),
    /// and from then to `welcome`.
    established: Histogram<u64>,
    upgrade: Histogram<u64>,
    failures: HashMap<String, usize>,
    /// When the first connection attempt began (the tokens were minted before).
    started: Instant,
}

/// Opens `n` connections with `concurrency` in flight.
///
/// The tokens are minted first, as real clients have theirs before they connect. Then
/// `concurrency` tasks each open connection after connection, taking the next index: the
/// bench spawns nothing and wakes no thread per connection beyond the connection itself,
/// so its own overhead does not crowd the hub it measures.
async fn open_many(cli: &Cli, addr: SocketAddr, n: usize, concurrency: usize, tag: &str) -> Opened {
    open_with(addr, mint_all(cli, n, tag), concurrency, None).await
}

/// Tokens for users `<users>-<tag>-0` to `<users>-<tag>-<n-1>`.
fn mint_all(cli: &Cli, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| token(&cli.secret, &format!("{}-{tag}-{i}", cli.users)))
        .collect()
}

/// As [`open_many`], with the tokens already minted: connection `i` uses `tokens[i]`.
async fn open_with(
    addr: SocketAddr,
    tokens: Vec<String>,
    concurrency: usize,
    subprotocol: Option<&'static str>,
) -> Opened {
    let n = tokens.len();
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let openers: Vec<_> = (0..concurrency.clamp(1, n.max(1)))
        .map(|_| {
            let (tokens, next) = (tokens.clone(), next.clone());
            tokio::spawn(async move {
                let mut opened = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(token) = tokens.get(i) else {
                        return opened;
                    };
                    if i > 0 && i % 5000 == 0 {
                        eprintln!("  {i}/{} connecting", tokens.len());
                    }
                    let timeout = Duration::from_secs(30);
                    let r = connect(addr, source_ip(i), token, timeout, subprotocol).await;
                    opened.push((i, r));
                }
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for o in openers {
        results.extend(o.await.unwrap());
    }
    results.sort_unstable_by_key(|(i, _)| *i);
    let mut conns = Vec::with_capacity(n);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut established = Histogram::<u64>::new(3).unwrap();
    let mut upgrade = Histogram::<u64>::new(3).unwrap();
    let mut failures = HashMap::new();
    for (_, r) in results {
        match r {
            Ok((c, t)) => {
                hist.record(t.welcome.as_micros() as u64).unwrap();
                established
                    .record(t.established.as_micros() as u64)
                    .unwrap();
                upgrade
                    .record((t.welcome - t.established).as_micros() as u64)
                    .unwrap();
                conns.push(c);
            }
            Err(f) => {
                let kind = match f {
                    Failure::Http(s) => format!("http_{s}"),
                    other => format!("{other:?}").to_lowercase(),
                };
                *failures.entry(kind).or_insert(0) += 1;
            }
        }
    }
    Opened {
        conns,
        hist,
        established,
        upgrade,
        failures,
        started,
    }
}

async fn run_connect(
    cli: &Cli,
    tokens: Vec<String>,
    concurrency: usize,
    pid: Option<u32>,
) -> serde_json::Value {
    let me = std::process::id();
    let n = tokens.len();
    let cpu_before = (pid.map(proc::cpu_split), proc::cpu_split(me));
    let Opened {
        conns,
        hist,
        established,
        upgrade,
        failures,
        started,
    } = open_with(cli.addr, tokens, concurrency, None).await;
    let secs = started.elapsed().as_secs_f64();
    // Read while every connection is still open: closing them is not part of the storm.
    let per_conn = |before: (u64, u64), after: (u64, u64)| {
        let (user, system) = proc::cpu_seconds(before, after);
        let ok = conns.len().max(1) as f64;
        json!({"user": user * 1e6 / ok, "system": system * 1e6 / ok})
    };
    let hub_cpu = pid
        .zip(cpu_before.0)
        .map(|(pid, b)| per_conn(b, proc::cpu_split(pid)));
    let bench_cpu = per_conn(cpu_before.1, proc::cpu_split(me));
    let p = percentiles(&hist, 1000.0);
    eprintln!(
        "connect: {} ok, {:?} failed, {:.0} conn/s",
        conns.len(),
        failures,
        conns.len() as f64 / secs
    );
    eprintln!(
        "  ms to welcome: p50 {} p90 {} p99 {} p99.9 {} max {}",
        p["p50"], p["p90"], p["p99"], p["p999"], p["max"]
    );
    let (e, u) = (
        percentiles(&established, 1000.0),
        percentiles(&upgrade, 1000.0),
    );
    eprintln!(
        "  until the bench saw it established: p50 {} p90 {} p99 {}; from there to welcome: p50 {} p90 {} p99 {}",
        e["p50"], e["p90"], e["p99"], u["p50"], u["p90"], u["p99"]
    );
    if let Some(h) = &hub_cpu {
        eprintln!(
            "  CPU per connection (us): hub user {:.1} system {:.1}; bench user {:.1} system {:.1}",
            h["user"], h["system"], bench_cpu["user"], bench_cpu["system"]
        );
    }
    json!({"scenario": "connect", "conns": n, "concurrency": concurrency, "ok": conns.len(),
           "failures": failures, "conns_per_s": conns.len() as f64 / secs, "connect_ms": p,
           "established_ms": e, "upgrade_ms": u, "hub_cpu_us_per_conn": hub_cpu, "bench_cpu_us_per_conn": bench_cpu})
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}
