//! 2,000 slowloris sockets (a request head trickled one byte at a time) and 2,000 sockets
//! that finish the TCP handshake and never send, held for a few seconds (every one the hub
//! drops is replaced): an honest client keeps connecting meanwhile, and every half-open
//! socket is closed by the hub once `handshake_timeout` (1 s here) has passed, however
//! often it sends a byte. The honest connect P99 before and during is printed (speeds go
//! in docs/faults.md, not in assertions).
//!
//!   cargo test --test slowloris -- --nocapture
//!
//! The only test of this binary: it holds ~8,000 files (both ends of 4,000 sockets) of the
//! 20,000 one process may hold.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use ringhub::config::Driver;
use socket2::{Domain, Socket, Type};

const SLOW: usize = 2_000;
const SILENT: usize = 2_000;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// A slowloris socket sends one more byte of its head this often.
const TRICKLE: Duration = Duration::from_millis(250);
/// How long the attack is kept up (closed sockets replaced).
const ATTACK: Duration = Duration::from_secs(3);
/// The longest wait for the hub to close what is left after the attack (a failure after).
const DRAIN: Duration = Duration::from_secs(20);
const HONEST_BEFORE: usize = 300;
const HEAD: &[u8] = b"GET /ws HTTP/1.1\r\nHost: slowloris\r\nUpgrade: websocket\r\n";

struct Attacker {
    stream: TcpStream,
    slow: bool,
    opened: Instant,
    sent: usize,
    next_byte: Instant,
}

/// A socket from 127.0.0.2..=127.0.0.9 (past one address's ephemeral ports), connected.
fn open_attacker(addr: SocketAddr, i: usize, slow: bool) -> Attacker {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let src = SocketAddr::new(IpAddr::from([127, 0, 0, 2 + (i % 8) as u8]), 0);
    sock.bind(&src.into()).unwrap();
    let opened = Instant::now();
    sock.connect(&addr.into())
        .expect("the attacker's TCP connect");
    let stream: TcpStream = sock.into();
    stream.set_nonblocking(true).unwrap();
    Attacker {
        stream,
        slow,
        opened,
        sent: 0,
        next_byte: opened,
    }
}

/// Trickles a byte when due; true when the hub has closed the socket.
fn closed_by_hub(a: &mut Attacker, now: Instant) -> bool {
    if a.slow && now >= a.next_byte && a.sent < HEAD.len() {
        match a.stream.write(&HEAD[a.sent..a.sent + 1]) {
            Ok(_) => a.sent += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return true,
        }
        a.next_byte = now + TRICKLE;
    }
    let mut buf = [0u8; 512];
    match a.stream.read(&mut buf) {
        Ok(0) => true,
        // The hub drops the socket without an answer (docs/protocol.md §1).
        Ok(n) => panic!(
            "the hub answered a half-open socket: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Connect (TCP) to `welcome`, for an honest client.
fn honest_connect(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let (c, _) = connect(addr, "honest");
    let took = started.elapsed();
    drop(c);
    took
}

fn p99(mut v: Vec<Duration>) -> (usize, Duration, Duration) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (v.len(), at(0.5), at(0.99))
}

#[test]
fn half_open_sockets_are_dropped_and_honest_clients_get_through() {
    let mut c = config(Driver::IoUring);
    c.shards = 2;
    c.handshake_timeout = HANDSHAKE_TIMEOUT;
    let hub = start(c);
    let addr = hub.addr;

    let before: Vec<Duration> = (0..HONEST_BEFORE).map(|_| honest_connect(addr)).collect();

    // The attack, kept up for ATTACK on this thread; the honest client on another.
    let honest = std::thread::spawn(move || {
        let until = Instant::now() + ATTACK;
        let mut during = Vec::new();
        while Instant::now() < until {
            during.push(honest_connect(addr));
        }
        during
    });
    let mut alive: Vec<Attacker> = (0..SLOW + SILENT)
        .map(|i| open_attacker(addr, i, i < SLOW))
        .collect();
    let mut lifetimes = Vec::new();
    let mut opened = alive.len();
    let attack_ends = Instant::now() + ATTACK;
    let gives_up = attack_ends + DRAIN;
    while !alive.is_empty() && Instant::now() < gives_up {
        let now = Instant::now();
        let mut i = 0;
        while i < alive.len() {
            if closed_by_hub(&mut alive[i], now) {
                let a = alive.swap_remove(i);
                // Seen closed now: at least as long as the hub kept it.
                lifetimes.push((a.slow, a.opened.elapsed()));
                if now < attack_ends {
                    alive.push(open_attacker(addr, opened, a.slow));
                    opened += 1;
                }
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let during = honest.join().unwrap();

    let (n, p50, p99b) = p99(before);
    println!("honest connect to welcome, before: {n} connects, P50 {p50:?}, P99 {p99b:?}");
    let (n, p50, p99d) = p99(during);
    println!("honest connect to welcome, during {SLOW} slowloris + {SILENT} silent sockets: {n} connects, P50 {p50:?}, P99 {p99d:?}");
    for slow in [true, false] {
        let kind = if slow { "slowloris" } else { "silent" };
        let l: Vec<Duration> = lifetimes
            .iter()
            .filter(|l| l.0 == slow)
            .map(|l| l.1)
            .collect();
        if l.is_empty() {
            continue;
        }
        let (n, p50, p99) = p99(l);
        println!("{kind}: {n} sockets closed by the hub, lifetime P50 {p50:?}, P99 {p99:?} (handshake_timeout {HANDSHAKE_TIMEOUT:?})");
    }
    assert!(
        alive.is_empty(),
        "{} of {opened} half-open sockets still open {DRAIN:?} after the attack",
        alive.len()
    );
    // Measured from before the client's connect, so never shorter than the hub's timer.
    let early: Vec<_> = lifetimes
        .iter()
        .filter(|l| l.1 < HANDSHAKE_TIMEOUT)
        .collect();
    assert!(
        early.is_empty(),
        "{} closed before handshake_timeout, first {:?}",
        early.len(),
        &early[..early.len().min(5)]
    );
    assert!(
        opened > SLOW + SILENT,
        "the hub dropped sockets during the attack"
    );
}
