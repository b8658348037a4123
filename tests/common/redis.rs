//! A real `redis-server` for a test, killed when dropped. When the binary is missing the
//! test is skipped, saying so, unless `RINGHUB_REQUIRE_REDIS=1` (CI), where it fails with a
//! clear message.
//!
//! The server listens on a Unix socket in a directory of its own (`--port 0` turns TCP
//! off): a TCP port would have to be probed for and then bound by another process, and
//! something else may take it in between; a path in our own directory cannot be taken.
//! The exception is [`Redis::start_secure`]: Redis serves TLS on TCP only, so it probes a
//! port (and tries another when redis-server cannot bind it).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Option<Child>,
    dir: PathBuf,
    /// AOF on, every write synced: a restart (same directory) keeps every acked write.
    aof: bool,
    secure: Option<Secure>,
}

/// A server with TLS on a TCP port (certificate from the test's CA) and the default user
/// off: only [`ACL_USER`] logs in.
struct Secure {
    port: u16,
    ca: PathBuf,
}

pub const ACL_USER: &str = "ringhub-app";
pub const ACL_PASSWORD: &str = "acl-test-password";

impl Redis {
    /// Starts a server, or returns None (skip) when redis-server is missing and not required.
    pub fn start() -> Option<Redis> {
        Self::start_with(false)
    }

    /// Like `start`, with the append-only file on (`appendfsync always`): what Redis
    /// acknowledged survives `stop` and `restart`.
    pub fn start_persistent() -> Option<Redis> {
        Self::start_with(true)
    }

    fn start_with(aof: bool) -> Option<Redis> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ringhub-redis-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis {
            child: None,
            dir,
            aof,
            secure: None,
        };
        if !redis.spawn() {
            return None;
        }
        Some(redis)
    }

    /// A server serving TLS on a TCP port (`tls_url`) with a certificate signed by `pki`,
    /// whose default user is off: every client logs in as [`ACL_USER`].
    pub fn start_secure(pki: &super::pki::Pki) -> Option<Redis> {
        let mut redis = Self::start_with(false)?;
        redis.stop();
        let leaf = pki.leaf();
        super::pki::write_leaf(&redis.dir, "redis", &leaf);
        let ca = redis.dir.join("ca.pem");
        std::fs::write(&ca, &pki.ca_pem).unwrap();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            redis.secure = Some(Secure {
                port,
                ca: ca.clone(),
            });
            if redis.try_spawn() {
                return Some(redis);
            }
        }
        panic!("redis-server did not start with TLS on any of 5 ports");
    }

    /// `rediss://` with the ACL user's name and password (a `start_secure` server).
    pub fn tls_url(&self) -> String {
        let port = self.secure.as_ref().expect("a secure server").port;
        format!("rediss://{ACL_USER}:{ACL_PASSWORD}@localhost:{port}")
    }

    /// The CA file that signed a `start_secure` server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.secure.as_ref().expect("a secure server").ca.clone()
    }

    /// Kills the server (SIGKILL: an outage); the hubs keep its URL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same socket, where the hubs expect it.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "redis-server restarts");
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// Spawns redis-server and waits until it accepts; false when it is not installed (and
    /// not required).
    fn spawn(&mut self) -> bool {
        if self.secure.is_some() {
            return self.try_spawn();
        }
        self.spawn_checked()
    }

    /// A secure server's start: false when it exited (its port was taken).
    fn try_spawn(&mut self) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn_checked()))
            .unwrap_or(false)
    }

    fn spawn_checked(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        if let Some(secure) = &self.secure {
            command
                .args(["--tls-port", &secure.port.to_string()])
                // Each word its own argument: redis-server joins them into one config line.
                .args(["--bind", "127.0.0.1", "-::1"])
                .arg("--tls-cert-file")
                .arg(self.dir.join("redis.crt"))
                .arg("--tls-key-file")
                .arg(self.dir.join("redis.key"))
                .arg("--tls-ca-cert-file")
                .arg(&secure.ca)
                .args(["--tls-auth-clients", "no"])
                .args(["--user", "default", "off"])
                .args(["--user", ACL_USER, "on"])
                .arg(format!(">{ACL_PASSWORD}"))
                // What docs/tls.md recommends: the hub's prefix, no admin commands.
                .args([
                    "~ringhub:*",
                    "&ringhub:*",
                    "+@all",
                    "-@admin",
                    "-@dangerous",
                ]);
        }
        let spawned = command
            .args(["--port", "0", "--save", ""])
            .args(if self.aof {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--unixsocket")
            .arg(self.socket())
            .args(["--unixsocketperm", "700"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::env::var("RINGHUB_REQUIRE_REDIS").as_deref() == Ok("1") {
                    panic!("redis-server is not installed, and RINGHUB_REQUIRE_REDIS=1: install it (apt-get install redis-server) or run ./scripts/test.sh");
                }
                eprintln!("SKIPPED: redis-server is not installed (set RINGHUB_REQUIRE_REDIS=1 to make this a failure)");
                return false;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(self.socket()).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("redis-server exited at start: {status}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not start on {}", self.socket().display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
        true
    }

    pub fn url(&self) -> String {
        match self.secure {
            None => format!("redis+unix://{}", self.socket().display()),
            Some(_) => format!(
                "redis+unix://{}?user={ACL_USER}&pass={ACL_PASSWORD}",
                self.socket().display()
            ),
        }
    }

    /// A plain client, for reading and writing what the hub should see.
    pub fn client(&self) -> ::redis::Connection {
        ::redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
