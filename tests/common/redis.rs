//! A real `redis-server` for a test, on a free port, killed when dropped. When the binary
//! is missing the test is skipped, saying so, unless `RINGHUB_REQUIRE_REDIS=1` (CI), where
//! it fails with a clear message.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    /// Starts a server, or returns None (skip) when redis-server is missing and not required.
    pub fn start() -> Option<Redis> {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (to restart one where the hubs expect it).
    pub fn start_on(port: u16) -> Option<Redis> {
        let dir = std::env::temp_dir().join(format!("ringhub-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spawned = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Redis { child, port, dir })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
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
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
