//! What a connection's frames mean at the WebSocket level: control frames, the close
//! handshake, first-frame `auth`, the echo endpoint; text frames of open connections go on
//! to `requests.rs`.

use std::time::Instant;

use super::conn::Stage;
use super::connect::Credential;
use super::core::{Core, Step};
use super::fanout::mark_dirty;
use crate::auth::{AuthError, Identity};
use crate::protocol::wire::Encoding;
use crate::protocol::{self, proto};
use crate::ws::decoder::{Event, Flow, Limits};
use crate::ws::frame::{self, Opcode};

enum Outcome {
    Continue,
    Stop,
    Authed(Box<Identity>),
}

impl Core {
    pub(super) fn on_input(&mut self, key: usize, input: &mut [u8]) -> Step {
        // What this input queues (replies, mostly) is not paced (`pace`), nor what waits for
        // the connection's interval already: listed again, it leaves with them.
        let conn = &mut self.conns[key];
        conn.answering = true;
        if conn.dirty {
            self.dirty.push(key);
        }
        match self.conns[key].stage() {
            Stage::Http => self.on_http(key, input),
            _ => self.on_frames(key, input),
        }
    }

    /// Decodes frames and acts on each.
    pub(super) fn on_frames(&mut self, key: usize, input: &mut [u8]) -> Step {
        let config = &self.shared.config;
        let limits = Limits {
            max_message: config.max_message_size,
            max_fragments: config.max_fragments,
        };
        let conn = &mut self.conns[key];
        if conn.poisoned {
            return Step::Continue;
        }
        if conn.connecting {
            self.hold_input(key, input);
            return Step::Continue;
        }
        conn.last_seen = Instant::now();
        let mut decoder = std::mem::take(&mut conn.decoder);
        let mut authed = None;
        let result = decoder.feed(
            input,
            limits,
            &mut |event| match self.on_event(key, event) {
                Outcome::Continue => Flow::Continue,
                Outcome::Stop => Flow::Stop,
                Outcome::Authed(identity) => {
                    authed = Some(identity);
                    Flow::Stop
                }
            },
        );
        let conn = &mut self.conns[key];
        conn.decoder = decoder;
        if let Err(e) = result {
            conn.poisoned = true;
            conn.decoder = Default::default();
            self.close(key, e.close_code(), e.reason());
        } else if let Some(identity) = authed {
            return self.authenticated(key, identity);
        }
        if self.conns[key].done {
            Step::Exit
        } else {
            Step::Continue
        }
    }

    fn on_event(&mut self, key: usize, event: Event<'_>) -> Outcome {
        crate::metrics::local(|m| crate::metrics::bump(&m.frames_in, 1));
        let phase = self.conns[key].stage();
        match event {
            Event::Ping(payload) => {
                self.send(key, frame::encode(Opcode::Pong, payload));
                Outcome::Continue
            }
            Event::Pong => Outcome::Continue,
            Event::Close(code) => {
                self.on_close_frame(key, code.map(|(c, _)| c));
                Outcome::Stop
            }
            _ if phase == Stage::Closing => Outcome::Continue,
            Event::Text(text) if phase == Stage::Echo => {
                self.send(key, frame::encode(Opcode::Text, text.as_bytes()));
                Outcome::Continue
            }
            Event::Binary(data) if phase == Stage::Echo => {
                self.send(key, frame::encode(Opcode::Binary, data));
                Outcome::Continue
            }
            // A connection speaks one encoding (`Sec-WebSocket-Protocol`): JSON in text
            // frames, or protobuf in binary frames. A frame of the other kind is malformed.
            _ if phase == Stage::AwaitAuth => self.on_auth_frame(key, event),
            Event::Text(text) if self.conns[key].wire.encoding == Encoding::Json => {
                if self.within_rate(key, || protocol::decode(text).ok().and_then(|r| r.id)) {
                    self.on_request(key, text);
                }
                Outcome::Continue
            }
            Event::Binary(data) if self.conns[key].wire.encoding == Encoding::Proto => {
                let id = || proto::decode_frame(data).ok().and_then(|f| f.id);
                if self.within_rate(key, id) {
                    self.on_proto_request(key, data);
                }
                Outcome::Continue
            }
            Event::Text(_) | Event::Binary(_) => {
                if self.within_rate(key, || None) {
                    let why = match self.conns[key].wire.encoding {
                        Encoding::Json => "binary frames are not part of the JSON protocol",
                        Encoding::Proto => {
                            "text frames are not part of the ringhub.v1.proto protocol"
                        }
                    };
                    self.malformed(key, None, why);
                }
                Outcome::Continue
            }
        }
    }

    /// The peer closes: answer with the same code (RFC 6455 §5.5.1) unless we started it.
    fn on_close_frame(&mut self, key: usize, code: Option<u16>) {
        let conn = &mut self.conns[key];
        if conn.stage() == Stage::Closing {
            // Our close was answered: the handshake is complete.
            conn.done = true;
            return;
        }
        conn.close_code = Some(code.unwrap_or(1005));
        let echo = match code {
            Some(c) => frame::close(c, ""),
            None => frame::encode(Opcode::Close, b""),
        };
        let _ = conn.queue(echo, usize::MAX);
        conn.phase.close();
        conn.finish_after_flush();
        mark_dirty(conn, &mut self.dirty, key);
        self.schedule(
            key,
            self.shared.config.close_timeout,
            super::state::TimerKind::Linger,
        );
    }

    /// The first frame, in the connection's encoding, must be `auth`.
    fn on_auth_frame(&mut self, key: usize, event: Event<'_>) -> Outcome {
        let token = match (self.conns[key].wire.encoding, event) {
            (Encoding::Json, Event::Text(text)) => protocol::decode(text)
                .ok()
                .filter(|r| r.kind == protocol::Kind::Auth)
                .map(|r| (r.id, r.token.unwrap_or_default().into_owned())),
            (Encoding::Proto, Event::Binary(data)) => match proto::decode_frame(data) {
                Ok(proto::pb::ClientFrame {
                    id,
                    request: Some(proto::pb::client_frame::Request::Auth(auth)),
                    ..
                }) => Some((id, auth.token)),
                _ => None,
            },
            _ => None,
        };
        let Some((id, token)) = token else {
            self.close(key, 4001, "the first frame must be auth");
            return Outcome::Stop;
        };
        // Kept from the upgrade for the connect proxy (`http_phase.rs`).
        let headers = if self.held_headers.is_empty() {
            None
        } else {
            self.held_headers.remove(&self.conns[key].id)
        };
        match self.credential(key, &token) {
            Credential::Verified(identity) => {
                self.conns[key].request_id = id;
                Outcome::Authed(Box::new(identity))
            }
            Credential::Ask => {
                self.conns[key].request_id = id;
                let headers = headers.as_deref().unwrap_or_default();
                if let Err(refusal) = self.ask_about(key, &token, id, false, headers) {
                    self.close(key, refusal.close_code(), refusal.reason());
                }
                // What follows the `auth` frame waits for the answer, undecoded.
                Outcome::Stop
            }
            Credential::Refused(AuthError::Revoked) => {
                self.close(key, 4004, "token revoked");
                Outcome::Stop
            }
            Credential::Refused(_) => {
                self.close(key, 4001, "invalid or expired token");
                Outcome::Stop
            }
        }
    }
}
