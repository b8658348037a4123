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

/// Spawns `cmd` (a `ringhub()` with its environment set, logging at info to stdout) and
/// waits for its `ringhub ready` line: the child and its public address. The rest of its
/// output is read on a thread and dropped, so that a full pipe never stalls the hub.
pub fn spawn_ready(mut cmd: Command) -> (KillOnDrop, std::net::SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ringhub starts");
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("ringhub logs `ringhub ready` before it exits")
            .unwrap();
        let Some(at) = line.find("ringhub ready addr=") else {
            continue;
        };
        let rest = &line[at + "ringhub ready addr=".len()..];
        let end = rest.find(' ').unwrap_or(rest.len());
        break rest[..end].parse().expect("the ready line's address");
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    (child, addr)
}
