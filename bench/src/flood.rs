//! `fanout --api-flood`: keep-alive connections to the admin port that call the server API
//! (`GET /api/info`) back to back for the whole run, ignoring `Retry-After`, to show what a
//! flood of API calls does to client delivery (PERFORMANCE.md). Each connection waits for
//! its answer before the next request, so the flood is as fast as the hub answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where and how hard to flood.
#[derive(Clone)]
pub struct Flood {
    pub admin: SocketAddr,
    pub key: String,
    pub conns: usize,
}

/// A flood under way.
pub struct Running {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    limited: Arc<AtomicU64>,
    other: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

pub fn start(f: Flood) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = [(); 3].map(|_| Arc::new(AtomicU64::new(0)));
    let request = format!(
        "GET /api/info HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {}\r\n\r\n",
        f.key
    );
    let tasks = (0..f.conns)
        .map(|_| {
            let (stop, request, counters) = (stop.clone(), request.clone(), counters.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(stream) = TcpStream::connect(f.admin).await else {
                        return;
                    };
                    let _ = stream.set_nodelay(true);
                    let mut stream = BufReader::new(stream);
                    while !stop.load(Ordering::Relaxed) {
                        let Some(status) = call(&mut stream, request.as_bytes()).await else {
                            break; // closed: open another
                        };
                        let i = match status {
                            200 => 0,
                            429 => 1,
                            _ => 2,
                        };
                        counters[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let [ok, limited, other] = counters;
    Running {
        stop,
        ok,
        limited,
        other,
        tasks,
        started: Instant::now(),
    }
}

/// One request and its answer's status, or None when the connection failed.
async fn call(stream: &mut BufReader<TcpStream>, request: &[u8]) -> Option<u16> {
    stream.get_mut().write_all(request).await.ok()?;
    let mut line = String::new();
    stream.read_line(&mut line).await.ok()?;
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    Some(status)
}

impl Running {
    /// Stops the flood and reports what it did.
    pub async fn stop(self) -> serde_json::Value {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let (ok, limited, other) = (
            self.ok.load(Ordering::Relaxed),
            self.limited.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
        );
        let per_s = (ok + limited + other) as f64 / secs;
        eprintln!(
            "  api flood: {per_s:.0} requests/s ({ok} answered 200, {limited} 429, {other} other)"
        );
        json!({"requests_per_s": per_s, "ok": ok, "rate_limited": limited, "other": other})
    }
}
