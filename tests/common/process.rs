//! The `ringhub` binary as a child process: started with none of the caller's `RINGHUB_*`
//! variables, and killed if the test fails half-way, so that no process outlives it.

use std::process::{Child, Command};

/// `ringhub` with every `RINGHUB_*` variable of the test's environment removed.
pub fn ringhub() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringhub"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RINGHUB_") {
            c.env_remove(k);
        }
    }
    c
}

/// Kills the child when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo URL in a log line of the zero-configuration start (`connect: ws://ADDR/PATH`),
/// as the address to connect to and the path with its token.
pub fn demo_url(line: &str) -> Option<(std::net::SocketAddr, String)> {
    let at = line.find("connect: ws://")?;
    let rest = line[at + "connect: ws://".len()..].trim();
    let (addr, path) = rest.split_at(rest.find('/')?);
    Some((addr.parse().ok()?, path.to_string()))
}
