//! Recovery scenarios. `recover`: a subscriber that missed M publications on a channel with
//! history comes back with `since`; timed from sending `subscribe` to the last missed
//! publication received.

use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::json;

use crate::client::{field_u64, text_frame};
use crate::{open_many, percentiles, Cli};

pub async fn run_recover(cli: &Cli, missed: u64, queries: usize) -> serde_json::Value {
    let opened = open_many(cli, cli.addr, 2, 2, "r").await;
    let (mut conns, failures) = (opened.conns, opened.failures);
    let (mut publisher, mut sub) = (conns.pop().expect("two"), conns.pop().expect("two"));
    let channel = "hist:recover";
    sub.send(&text_frame(
        format!(r#"{{"id":1,"type":"subscribe","channel":"{channel}"}}"#).as_bytes(),
    ))
    .await;
    let (_, reply) = sub.next_frame().await.expect("subscribed");
    let epoch = epoch_of(&reply);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let unsubscribe =
        text_frame(format!(r#"{{"id":2,"type":"unsubscribe","channel":"{channel}"}}"#).as_bytes());
    for _ in 0..queries {
        // Leave, miss `missed` publications, come back with `since`.
        sub.send(&unsubscribe).await;
        loop {
            let (_, p) = sub.next_frame().await.expect("unsubscribed");
            if p.starts_with(br#"{"id":2,"#) {
                break;
            }
        }
        let mut top = 0;
        for n in 0..missed {
            let id = if n + 1 == missed { r#""id":9,"# } else { "" };
            let f = format!(r#"{{{id}"type":"publish","channel":"{channel}","data":{{"n":{n}}}}}"#);
            publisher.send(&text_frame(f.as_bytes())).await;
        }
        while top == 0 {
            let (_, p) = publisher.next_frame().await.expect("ack");
            if p.starts_with(br#"{"id":9,"#) {
                top = field_u64(&p, br#""offset":"#).expect("ack with offset");
            }
        }
        let since = top - missed;
        let f = format!(
            r#"{{"id":3,"type":"subscribe","channel":"{channel}","since":{{"offset":{since},"epoch":"{epoch}"}}}}"#
        );
        let t = Instant::now();
        sub.send(&text_frame(f.as_bytes())).await;
        let mut got = 0;
        while got < missed {
            let (_, p) = sub.next_frame().await.expect("recovered publications");
            if p.starts_with(br#"{"id":3,"#) {
                assert!(
                    p.windows(16).any(|w| w == br#""recovered":true"#),
                    "not recovered: {}",
                    String::from_utf8_lossy(&p)
                );
            } else if p.starts_with(br#"{"type":"message""#) {
                got += 1;
            }
        }
        hist.record(t.elapsed().as_micros() as u64).unwrap();
    }
    let p = percentiles(&hist, 1000.0);
    eprintln!(
        "recover: {missed} missed publications, {queries} times; ms: p50 {} p99 {} max {}",
        p["p50"], p["p99"], p["max"]
    );
    json!({"scenario": "recover", "missed": missed, "queries": queries, "failures": failures, "recover_ms": p})
}

fn epoch_of(reply: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(reply).expect("JSON reply");
    v["epoch"]
        .as_str()
        .expect("a channel with history has an epoch")
        .to_string()
}

/// The `storm` scenario: N subscribed clients drop at once and reconnect, C in flight;
/// timed until every one is subscribed again (with `--recover`, on channels with history,
/// resubscribing with `since` and checking `recovered: true`).
pub async fn run_storm(
    cli: &Cli,
    n: usize,
    concurrency: usize,
    recover: bool,
) -> serde_json::Value {
    let prefix = if recover { "hist:storm" } else { "bench:storm" };
    let opened = open_many(cli, cli.addr, n, concurrency, "storm").await;
    let (mut conns, failures) = (opened.conns, opened.failures);
    let mut positions = Vec::with_capacity(conns.len());
    for (i, c) in conns.iter_mut().enumerate() {
        let f = format!(
            r#"{{"id":1,"type":"subscribe","channel":"{prefix}-{}"}}"#,
            i % 100
        );
        c.send(&text_frame(f.as_bytes())).await;
        let (_, p) = c.next_frame().await.expect("subscribed");
        positions.push(if recover {
            Some((field_u64(&p, br#""offset":"#).unwrap_or(0), epoch_of(&p)))
        } else {
            None
        });
    }
    let held = conns.len();
    let tokens = crate::mint_all(cli, held, "storm");
    drop(conns);
    let crate::Opened {
        conns: mut again,
        hist,
        failures: failures_again,
        started,
        ..
    } = crate::open_with(cli.addr, tokens, concurrency, None).await;
    let mut not_recovered = 0;
    for (i, c) in again.iter_mut().enumerate() {
        let since = match &positions[i % positions.len()] {
            Some((offset, epoch)) => format!(r#","since":{{"offset":{offset},"epoch":"{epoch}"}}"#),
            None => String::new(),
        };
        let f = format!(
            r#"{{"id":2,"type":"subscribe","channel":"{prefix}-{}"{since}}}"#,
            i % 100
        );
        c.send(&text_frame(f.as_bytes())).await;
    }
    for c in again.iter_mut() {
        loop {
            let (_, p) = c.next_frame().await.expect("subscribed again");
            if p.starts_with(br#"{"id":2,"#) {
                if recover && !p.windows(16).any(|w| w == br#""recovered":true"#) {
                    not_recovered += 1;
                }
                break;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let p = percentiles(&hist, 1000.0);
    eprintln!(
        "storm: {held} clients dropped and back in {secs:.2} s (recover: {recover}, not recovered: {not_recovered}); reconnect ms p50 {} p99 {} max {}",
        p["p50"], p["p99"], p["max"]
    );
    json!({"scenario": "storm", "conns": held, "recover": recover, "seconds_to_resubscribed": secs,
           "not_recovered": not_recovered, "failures": failures, "failures_reconnecting": failures_again,
           "reconnect_ms": p})
}
