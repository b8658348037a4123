use super::*;

/// Deltas made by Fossil's own `delta.c` (scripts/fossil-vectors.py regenerates them).
#[test]
fn matches_the_reference_implementation() {
    let vectors: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("vectors.json")).unwrap();
    assert!(vectors.len() >= 15);
    for v in &vectors {
        let hex = |k: &str| decode_hex(v[k].as_str().unwrap());
        let (source, target, delta) = (hex("source"), hex("target"), hex("delta"));
        assert_eq!(
            String::from_utf8_lossy(&create(&source, &target)),
            String::from_utf8_lossy(&delta),
            "{} -> {} bytes",
            source.len(),
            target.len()
        );
        assert_eq!(apply(&source, &delta).unwrap(), target);
    }
}

#[test]
fn round_trips_edits_of_a_table_state() {
    let mut state = br#"{"table":7,"pot":0,"seats":["a","b","c","d"],"log":[]}"#.repeat(12);
    for round in 0..50u32 {
        let mut next = state.clone();
        let at = (round as usize * 97) % next.len();
        next.splice(at..at, round.to_string().into_bytes());
        if round % 3 == 0 {
            next.truncate(next.len() - 5);
        }
        let delta = create(&state, &next);
        assert_eq!(apply(&state, &delta).unwrap(), next);
        assert!(
            delta.len() < next.len() / 4,
            "a small edit makes a small delta"
        );
        state = next;
    }
}

#[test]
fn malformed_deltas_are_errors_not_panics() {
    let source = b"0123456789abcdef0123456789abcdef";
    let good = create(source, b"0123456789abcdef0123456789abcdefXY");
    for cut in 0..good.len() {
        assert!(apply(source, &good[..cut]).is_err(), "cut at {cut}");
    }
    for bad in [
        &b""[..],
        b"\n",
        b"5",
        b"5\n5:ab",
        b"2\nz@0,0;",
        b"2\n2@~~~~~~~~~~~~,0;",
        b"2\n2@0;",
        b"2\n2?",
        b"~~~~~~~~~~~~~~\n0;",
        b"2\n2:ab0;",
    ] {
        assert!(
            apply(source, bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut flipped = good.clone();
    let at = flipped.len() - 3;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    assert!(apply(source, &flipped).is_err());
}

#[test]
fn numbers_in_base_64() {
    let mut out = Vec::new();
    for v in [0, 1, 63, 64, 4095, 4096, u32::MAX as usize] {
        out.clear();
        put_int(&mut out, v);
        assert_eq!(out.len(), digit_count(v));
        assert_eq!(get_int(&mut &out[..]), v);
    }
}

fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
