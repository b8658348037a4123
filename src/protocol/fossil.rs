//! Fossil deltas (the format of the Fossil SCM, `www/delta_format.wiki` in its sources):
//! how a channel's publication is sent as the difference from the one before it
//! (docs/protocol.md, "Deltas").
//!
//! A delta is the target's length, a newline, then commands: `N@O,` copies `N` bytes of
//! the source from offset `O`, `N:` inserts the next `N` bytes of the delta, and `C;` ends
//! it with a checksum of the target. Numbers are in the format's base 64, most significant
//! digit first. The encoder is the format's own algorithm (`delta_create` in Fossil's
//! `delta.c`), so its output is byte for byte what Fossil makes: the tests compare it with
//! the reference implementation.
//!
//! No crate was used: the one on crates.io (`fossil-delta` 0.2, 2020) differs from the
//! reference in which source blocks it indexes, has `unsafe` in its checksum and panics in
//! its inverse; the algorithm is a hundred lines.

const NHASH: usize = 16;
const DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";

/// Why a delta could not be applied.
#[derive(Debug, PartialEq, Eq)]
pub enum ApplyError {
    Malformed(&'static str),
    Checksum,
}

/// The delta that turns `source` into `target`.
pub fn create(source: &[u8], target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len() / 4 + 32);
    put_int(&mut out, target.len());
    out.push(b'\n');
    if source.len() <= NHASH {
        insert(&mut out, target);
        return finish(out, target);
    }
    let index = Index::of(source);
    let mut base = 0;
    while base + NHASH < target.len() {
        let mut hash = Hash::new(&target[base..base + NHASH]);
        let mut i = 0;
        loop {
            if let Some(best) = index.best_match(source, target, base, i, hash.value()) {
                if best.literal > 0 {
                    insert(&mut out, &target[base..base + best.literal]);
                    base += best.literal;
                }
                base += best.count;
                put_int(&mut out, best.count);
                out.push(b'@');
                put_int(&mut out, best.offset);
                out.push(b',');
                break;
            }
            if base + i + NHASH >= target.len() {
                insert(&mut out, &target[base..]);
                base = target.len();
                break;
            }
            hash.roll(target[base + i + NHASH]);
            i += 1;
        }
    }
    if base < target.len() {
        insert(&mut out, &target[base..]);
    }
    finish(out, target)
}

/// Applies `delta` to `source`. Never panics on a malformed delta.
pub fn apply(source: &[u8], delta: &[u8]) -> Result<Vec<u8>, ApplyError> {
    let mut d = delta;
    let limit = get_int(&mut d);
    let Some((b'\n', rest)) = d.split_first() else {
        return Err(ApplyError::Malformed("size not followed by a newline"));
    };
    d = rest;
    let mut out = Vec::with_capacity(limit.min(source.len() + delta.len()));
    while !d.is_empty() {
        let n = get_int(&mut d);
        let Some((&op, rest)) = d.split_first() else {
            break;
        };
        d = rest;
        match op {
            b'@' => {
                let offset = get_int(&mut d);
                match d.split_first() {
                    Some((b',', rest)) => d = rest,
                    _ => return Err(ApplyError::Malformed("copy not ended by ','")),
                }
                let end = offset.checked_add(n).filter(|&e| e <= source.len());
                let Some(end) = end else {
                    return Err(ApplyError::Malformed("copy past the end of the source"));
                };
                if out.len() + n > limit {
                    return Err(ApplyError::Malformed("copy past the announced size"));
                }
                out.extend_from_slice(&source[offset..end]);
            }
            b':' => {
                if n > d.len() {
                    return Err(ApplyError::Malformed("insert past the end of the delta"));
                }
                if out.len() + n > limit {
                    return Err(ApplyError::Malformed("insert past the announced size"));
                }
                out.extend_from_slice(&d[..n]);
                d = &d[n..];
            }
            b';' => {
                if out.len() != limit {
                    return Err(ApplyError::Malformed("output not of the announced size"));
                }
                if n != checksum(&out) as usize {
                    return Err(ApplyError::Checksum);
                }
                return Ok(out);
            }
            _ => return Err(ApplyError::Malformed("unknown command")),
        }
    }
    Err(ApplyError::Malformed("not terminated"))
}

fn insert(out: &mut Vec<u8>, text: &[u8]) {
    put_int(out, text.len());
    out.push(b':');
    out.extend_from_slice(text);
}

fn finish(mut out: Vec<u8>, target: &[u8]) -> Vec<u8> {
    put_int(&mut out, checksum(target) as usize);
    out.push(b';');
    out
}

fn put_int(out: &mut Vec<u8>, mut v: usize) {
    if v == 0 {
        out.push(b'0');
        return;
    }
    let mut digits = [0u8; 12];
    let mut n = 0;
    while v > 0 {
        digits[n] = DIGITS[v & 63];
        v >>= 6;
        n += 1;
    }
    out.extend(digits[..n].iter().rev());
}

/// Reads a base-64 number from the front of `d` (0 when there is none).
fn get_int(d: &mut &[u8]) -> usize {
    let mut v: usize = 0;
    while let Some((&c, rest)) = d.split_first() {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'_' => 36,
            b'a'..=b'z' => c - b'a' + 37,
            b'~' => 63,
            _ => break,
        };
        v = v.saturating_mul(64).saturating_add(digit as usize);
        *d = rest;
    }
    v
}

fn digit_count(v: usize) -> usize {
    let mut i = 1;
    let mut x = 64usize;
    while v >= x {
        i += 1;
        x = x.saturating_mul(64);
    }
    i
}

/// The sum of the target's big-endian 32-bit words, the last one padded with zeros.
fn checksum(z: &[u8]) -> u32 {
    let mut words = z.chunks_exact(4);
    let mut sum = words.by_ref().fold(0u32, |s, w| {
        s.wrapping_add(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    });
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut last = [0u8; 4];
        last[..tail.len()].copy_from_slice(tail);
        sum = sum.wrapping_add(u32::from_be_bytes(last));
    }
    sum
}

/// The rolling hash of a 16-byte window (Adler-like, as the reference computes it with
/// C's signed `char`, so the matches found are the same).
struct Hash {
    a: u16,
    b: u16,
    i: usize,
    window: [u16; NHASH],
}

impl Hash {
    fn new(z: &[u8]) -> Hash {
        let mut window = [0u16; NHASH];
        for (w, &c) in window.iter_mut().zip(z) {
            *w = c as i8 as u16;
        }
        let mut a = window[0];
        let mut b = window[0];
        for &c in &window[1..] {
            a = a.wrapping_add(c);
            b = b.wrapping_add(a);
        }
        Hash { a, b, i: 0, window }
    }

    fn roll(&mut self, c: u8) {
        let c = c as i8 as u16;
        let old = self.window[self.i];
        self.window[self.i] = c;
        self.i = (self.i + 1) & (NHASH - 1);
        self.a = self.a.wrapping_sub(old).wrapping_add(c);
        self.b = self
            .b
            .wrapping_sub((NHASH as u16).wrapping_mul(old))
            .wrapping_add(self.a);
    }

    fn value(&self) -> u32 {
        self.a as u32 | ((self.b as u32) << 16)
    }
}

/// The source's 16-byte blocks by hash: `landmark[h]` is the last block with hash `h`,
/// `collide[b]` the block before `b` with the same hash.
struct Index {
    landmark: Vec<u32>,
    collide: Vec<u32>,
}

const NONE: u32 = u32::MAX;

struct Match {
    count: usize,
    offset: usize,
    literal: usize,
}

impl Index {
    fn of(source: &[u8]) -> Index {
        let n = source.len() / NHASH;
        let mut index = Index {
            landmark: vec![NONE; n],
            collide: vec![NONE; n],
        };
        let mut block = 0;
        while block * NHASH < source.len() - NHASH {
            let start = block * NHASH;
            let h = Hash::new(&source[start..start + NHASH]).value() as usize % n;
            index.collide[block] = index.landmark[h];
            index.landmark[h] = block as u32;
            block += 1;
        }
        index
    }

    /// The longest worthwhile copy for the window at `base + i` of the target, looking at
    /// most 250 blocks back along the hash's chain.
    fn best_match(
        &self,
        source: &[u8],
        target: &[u8],
        base: usize,
        i: usize,
        hash: u32,
    ) -> Option<Match> {
        let mut best: Option<Match> = None;
        let mut block = self.landmark[hash as usize % self.landmark.len()];
        let mut limit = 250;
        while block != NONE && limit > 0 {
            limit -= 1;
            let src = block as usize * NHASH;
            let forward = source[src..]
                .iter()
                .zip(&target[base + i..])
                .take_while(|(a, b)| a == b)
                .count();
            let backward = (1..src.min(i + 1))
                .take_while(|&k| source[src - k] == target[base + i - k])
                .count();
            let count = forward + backward;
            let offset = src - backward;
            let literal = i - backward;
            let size = digit_count(literal) + digit_count(count) + digit_count(offset) + 3;
            if count >= size && count > best.as_ref().map_or(0, |b| b.count) {
                best = Some(Match {
                    count,
                    offset,
                    literal,
                });
            }
            block = self.collide[block as usize];
        }
        best
    }
}

#[cfg(test)]
mod tests;
