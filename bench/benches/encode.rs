//! What the hub makes once per publication and shard, timed with criterion:
//! a Fossil delta of a ~1 KB table state against the previous one, and of a 60-byte move.
//!
//!     cargo bench -p ringhub-bench --bench encode
//!
//! Figures in PERFORMANCE.md ("Bytes on the wire").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringhub::protocol::fossil;
use serde_json::json;

/// A poker table's state (~1 KB of JSON), changed a little by each round.
pub fn table(round: u64) -> Vec<u8> {
    let seats: Vec<_> = (0..9)
        .map(|s| {
            let chips = 1000 + s * 37 + if s == round % 9 { round * 5 } else { 0 };
            json!({"seat": s, "user": format!("player-{s:02}"), "chips": chips,
                   "bet": if s == round % 9 { 20 } else { 0 }, "cards": ["As", "Kd"],
                   "folded": s % 4 == 0, "avatar": format!("https://cdn.example.com/a/{s}.png")})
        })
        .collect();
    serde_json::to_vec(&json!({"table": 42, "round": round, "pot": round * 40,
        "turn": round % 9, "board": ["2c", "7h", "Jd"], "seats": seats}))
    .unwrap()
}

/// A 60-byte move.
fn mv(round: u64) -> Vec<u8> {
    format!(
        r#"{{"seat":{},"action":"raise","amount":{:>6},"t":{:>10}}}"#,
        round % 9,
        round * 20,
        1_700_000_000 + round
    )
    .into_bytes()
}

fn deltas(c: &mut Criterion) {
    let (a, b) = (table(1), table(2));
    let d = fossil::create(&a, &b);
    eprintln!("table state: {} bytes, delta {} bytes", b.len(), d.len());
    let mut g = c.benchmark_group("fossil");
    g.throughput(Throughput::Bytes(b.len() as u64));
    g.bench_function("create, 1 KB table state", |bench| {
        bench.iter(|| fossil::create(&a, &b))
    });
    g.bench_function("apply, 1 KB table state", |bench| {
        bench.iter(|| fossil::apply(&a, &d).unwrap())
    });
    let (m1, m2) = (mv(1), mv(2));
    eprintln!(
        "move: {} bytes, delta {} bytes",
        m2.len(),
        fossil::create(&m1, &m2).len()
    );
    g.throughput(Throughput::Bytes(m2.len() as u64));
    g.bench_function("create, 60-byte move", |bench| {
        bench.iter(|| fossil::create(&m1, &m2))
    });
    g.finish();
}

criterion_group!(benches, deltas);
criterion_main!(benches);
