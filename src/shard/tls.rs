//! The read side of a TLS connection: the ciphertext the reactor read goes through the
//! connection's rustls session, and the plaintext that comes out, one piece at a time in
//! the shard's plaintext buffer, is handled as a plaintext connection's read is
//! (`Core::on_input`). The write side is `conn/tls.rs`.

use super::conn::Decrypted;
use super::core::Step;
use super::Shard;

/// Handles `input`, ciphertext read from connection `key` (empty: only what the session
/// already holds, as when a connection arrives from another shard).
pub(super) fn input(shard: &Shard, key: usize, mut input: &[u8]) -> Step {
    let mut plain = shard.plainbuf.borrow_mut();
    let mut core = shard.core.borrow_mut();
    loop {
        let conn = &mut core.conns[key];
        match conn.decrypt(&mut input, &mut plain) {
            Decrypted::Plain(n) => match core.on_input(key, &mut plain[..n]) {
                Step::Continue => {}
                Step::Handoff(target, mut handoff) => {
                    // The rest goes along, to be given to the session on the other shard.
                    handoff.detached.tls_backlog = input.to_vec();
                    core.flush_dirty();
                    return Step::Handoff(target, handoff);
                }
                step => {
                    core.flush_dirty();
                    return step;
                }
            },
            Decrypted::Nothing => {
                // A handshake flight (or an alert) leaves now; frames queued by the
                // plaintext above leave with the other reads of this pass (the reactor's
                // flush at its end, or the inbox batch's).
                if conn.tls_wants_write() {
                    conn.flush();
                }
                return Step::Continue;
            }
            Decrypted::Closed => {
                // The alert, if any, goes out before the socket closes.
                conn.flush();
                core.flush_dirty();
                return Step::Exit;
            }
        }
    }
}
