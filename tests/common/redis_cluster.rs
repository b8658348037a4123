//! A real Redis Cluster for a test: six `redis-server` processes with `cluster-enabled yes`
//! on free TCP ports in a directory of their own, made into three masters with one replica
//! each by `redis-cli --cluster create`, killed when dropped. A short
//! `cluster-node-timeout` (1000 ms) lets a replica take over within a few seconds of its
//! master's death. Skipped, saying so, when redis-server is missing, unless
//! `RINGHUB_REQUIRE_REDIS=1` (then it fails with a clear message), like `redis::Redis`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may be unreachable before the cluster fails it over.
pub const NODE_TIMEOUT_MS: u64 = 1000;

pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

struct Node {
    port: u16,
    child: Option<Child>,
}

/// A port nothing listens on now (and its bus port, given explicitly with `cluster-port`).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisCluster {
    /// Starts the six nodes and makes the cluster, or returns None (skip).
    pub fn start() -> Option<RedisCluster> {
        let dir = std::env::temp_dir().join(format!("ringhub-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            dir,
        };
        for i in 0..6 {
            let (port, bus) = (free_port(), free_port());
            let node_dir = cluster.dir.join(i.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            let spawned = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                // Replicas sync at once: one that has not synced cannot take over.
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let child = match spawned {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if std::env::var("RINGHUB_REQUIRE_REDIS").as_deref() == Ok("1") {
                        panic!("redis-server is not installed, and RINGHUB_REQUIRE_REDIS=1: install it (apt-get install redis-server) or run ./scripts/test.sh");
                    }
                    eprintln!("SKIPPED: redis-server is not installed (set RINGHUB_REQUIRE_REDIS=1 to make this a failure)");
                    return None;
                }
                Err(e) => panic!("cannot start redis-server: {e}"),
            };
            cluster.nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        for node in &cluster.nodes {
            let ok = wait(Duration::from_secs(10), || {
                cli(node.port, &["PING"]).trim() == "PONG"
            });
            assert!(ok, "redis-server starts on port {}", node.port);
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let ok = wait(Duration::from_secs(20), || {
            cluster.nodes.iter().all(|n| cluster.ok_at(n.port))
        });
        assert!(ok, "the cluster comes up (cluster_state:ok on every node)");
        let ok = wait(Duration::from_secs(20), || {
            let synced = cluster
                .nodes
                .iter()
                .filter(|n| cli(n.port, &["INFO", "replication"]).contains("master_link_status:up"))
                .count();
            synced == 3
        });
        assert!(ok, "the three replicas sync with their masters");
        Some(cluster)
    }

    fn ok_at(&self, port: u16) -> bool {
        cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
    }

    /// The seed nodes, as `redis_cluster` takes them.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The port of the master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        self.serving(key)
            .unwrap_or_else(|| panic!("no master serves {key}"))
    }

    /// The live master serving `key`'s slot, if one does now.
    fn serving(&self, key: &str) -> Option<u16> {
        let live = self.live_port();
        let slot: u16 = cli(live, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap();
        for line in cli(live, &["CLUSTER", "NODES"]).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let port: u16 = f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) else {
                    continue;
                };
                if (a..=b).contains(&slot) {
                    return Some(port);
                }
            }
        }
        None
    }

    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a live node")
            .port
    }

    /// SIGKILLs the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|n| n.port == port).unwrap();
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until another master serves `key`'s slot than `dead` and the cluster says ok.
    pub fn wait_failover(&self, key: &str, dead: u16) -> u16 {
        let mut master = dead;
        let ok = wait(Duration::from_secs(20), || {
            master = self.serving(key).unwrap_or(dead);
            master != dead && self.ok_at(self.live_port())
        });
        assert!(
            ok,
            "a replica takes over from port {dead}:\n{}",
            cli(self.live_port(), &["CLUSTER", "NODES"])
        );
        master
    }

    /// The pids of the live nodes (for CPU accounting).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(Child::id))
            .collect()
    }
}

fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
