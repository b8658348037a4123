//! The first bytes of a connection: the HTTP request head, routed to the WebSocket upgrade,
//! the health endpoints, or a refusal (`docs/protocol.md` §1).

use super::conn::Phase;
use super::connect::Credential;
use super::core::{Core, Step};
use super::state::TimerKind;
use crate::per_ip::IpRefusal;
use crate::protocol::wire::{Offer, Wire};
use crate::ws::extensions::{self, Policy};
use crate::ws::http::{self, HeadError};

impl Core {
    pub(super) fn on_http(&mut self, key: usize, input: &[u8]) -> Step {
        let conn = &mut self.conns[key];
        // Parse in place when the head arrived in one read (the usual case).
        let owned;
        let buf: &[u8] = if conn.head.is_empty() {
            input
        } else {
            conn.head.extend_from_slice(input);
            owned = std::mem::take(&mut conn.head);
            &owned
        };
        let keep = match self.shared.config.connect_proxy_url {
            Some(_) => &self.shared.config.connect_proxy_headers[..],
            None => &[],
        };
        let (req, len) = match http::parse_keeping(buf, keep) {
            Ok(parsed) => parsed,
            Err(HeadError::Incomplete) => {
                self.conns[key].head = buf.to_vec();
                return Step::Continue;
            }
            Err(HeadError::TooLarge) => {
                let body = http::refusal(431, "too_large", "request head over 8 KiB", "");
                self.answer_http(key, body);
                return Step::Continue;
            }
            Err(HeadError::Malformed) => {
                let body = http::refusal(400, "bad_request", "malformed HTTP request", "");
                self.answer_http(key, body);
                return Step::Continue;
            }
        };
        let rest = &buf[len..];
        match req.path.as_str() {
            "/health" => {
                self.answer_http(key, http::response(200, r#"{"status":"ok"}"#, ""));
                Step::Continue
            }
            "/ready" => {
                let answer = if self.shared.is_ready() {
                    http::response(200, r#"{"status":"ready"}"#, "")
                } else {
                    http::refusal(503, "unavailable", "not accepting connections", "")
                };
                self.answer_http(key, answer);
                Step::Continue
            }
            "/ws" => self.upgrade(key, &req, rest, false),
            "/echo" if self.shared.config.echo_endpoint => self.upgrade(key, &req, rest, true),
            _ => {
                self.answer_http(key, http::refusal(404, "not_found", "unknown path", ""));
                Step::Continue
            }
        }
    }

    fn upgrade(&mut self, key: usize, req: &http::Request, rest: &[u8], echo: bool) -> Step {
        if !req.upgrade {
            let body = if req.method == "GET" {
                http::refusal(
                    426,
                    "upgrade_required",
                    "this endpoint speaks WebSocket only",
                    "Upgrade: websocket\r\n",
                )
            } else {
                http::refusal(400, "bad_request", "a WebSocket upgrade is a GET", "")
            };
            self.answer_http(key, body);
            return Step::Continue;
        }
        let ws_key = match req.check_websocket() {
            Ok(k) => k,
            Err(why) => {
                self.answer_http(
                    key,
                    http::refusal(400, "bad_request", why, "Sec-WebSocket-Version: 13\r\n"),
                );
                return Step::Continue;
            }
        };
        if let Some(refusal) = self.refuse_origin(req.origin.as_deref()) {
            self.answer_http(key, refusal);
            return Step::Continue;
        }
        if self.shared.is_draining() {
            refused("draining");
            self.answer_http(
                key,
                http::refusal(
                    503,
                    "unavailable",
                    "the hub is draining",
                    "Retry-After: 1\r\n",
                ),
            );
            return Step::Continue;
        }
        let peer = self.conns[key].peer.ip();
        let now = std::time::Instant::now();
        if let Err(refusal) = self.shared.per_ip.attempt(peer, now) {
            return self.refuse_ip(key, refusal);
        }
        let mut ask = false;
        let identity = match req.token() {
            Some(token) => match self.credential(key, token) {
                Credential::Verified(id) => Some(Box::new(id)),
                // Asked once the upgrade is done: refusals are then close codes.
                Credential::Ask => {
                    ask = true;
                    None
                }
                Credential::Refused(_) => {
                    self.answer_http(
                        key,
                        http::refusal(401, "unauthorized", "invalid or expired token", ""),
                    );
                    return Step::Continue;
                }
            },
            None => None,
        };
        if !self.shared.try_count_connection() {
            refused("full");
            self.answer_http(
                key,
                http::refusal(
                    503,
                    "unavailable",
                    "the hub is at its connection limit",
                    "Retry-After: 1\r\n",
                ),
            );
            return Step::Continue;
        }
        if let Err(refusal) = self.shared.per_ip.admit(peer, now) {
            self.shared
                .connections
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            return self.refuse_ip(key, refusal);
        }
        let limit = self.shared.config.send_queue_bytes;
        let conn = &mut self.conns[key];
        conn.counted = true;
        conn.client = req
            .client
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| truncate(c, 32).into());
        // The echo endpoint speaks frames, not the protocol: it chooses no subprotocol.
        let offer = match echo {
            false => Offer::parse(req.subprotocols.iter().map(String::as_str)),
            true => Offer::None,
        };
        conn.wire = Wire {
            encoding: offer.encoding(),
            deflate: None,
        };
        let config = &self.shared.config;
        let agreed = req
            .extensions
            .as_deref()
            .filter(|_| config.compression)
            .and_then(|offers| {
                let policy = Policy {
                    client_context: config.compression_client_context,
                };
                extensions::negotiate(offers, policy)
            });
        let answer = agreed.as_ref().map(|(_, header)| header.as_str());
        let head = http::switching_protocols(ws_key, offer.echo(), answer);
        let _ = conn.queue(head.into(), limit);
        if let Some((deflate, _)) = agreed {
            conn.decoder.enable_deflate(deflate.client_no_context);
            conn.wire.deflate = Some(deflate.server_bits);
        }
        conn.decoder.stash(rest);
        if echo {
            conn.phase = Phase::Echo;
            super::fanout::mark_dirty(conn, &mut self.dirty, key);
            return self.on_frames(key, &mut []);
        }
        conn.phase = Phase::AwaitAuth;
        match identity {
            Some(identity) => self.authenticated(key, identity),
            None => {
                super::fanout::mark_dirty(conn, &mut self.dirty, key);
                self.schedule(key, self.shared.config.auth_timeout, TimerKind::Auth);
                if ask {
                    let token = req.token().unwrap_or("");
                    if let Err(refusal) = self.ask_about(key, token, None, false, &req.kept) {
                        self.close(key, refusal.close_code(), refusal.reason());
                    }
                    return Step::Continue;
                }
                if !req.kept.is_empty() {
                    // For the connect proxy, if the `auth` frame's token goes there.
                    let id = self.conns[key].id;
                    self.held_headers.insert(id, req.kept.clone());
                }
                if self.conns[key].decoder.has_pending() {
                    return self.on_frames(key, &mut []);
                }
                Step::Continue
            }
        }
    }
}

impl Core {
    /// The 403 of an `Origin` that `allowed_origins` does not list, or of none at all when
    /// `allow_missing_origin` is off.
    fn refuse_origin(&self, origin: Option<&str>) -> Option<Vec<u8>> {
        let config = &self.shared.config;
        let (reason, message) = match origin {
            Some(o) if !config.allowed_origins.allows(o) => {
                ("origin", "this Origin is not allowed")
            }
            None if !config.allow_missing_origin => {
                ("missing_origin", "an Origin header is required")
            }
            _ => return None,
        };
        refused(reason);
        Some(http::refusal(403, "forbidden", message, ""))
    }

    fn refuse_ip(&mut self, key: usize, refusal: IpRefusal) -> Step {
        let (message, retry_after) = match refusal {
            IpRefusal::Rate(wait) => (
                "too many connection attempts from this address",
                wait.as_secs_f64().ceil().max(1.0) as u64,
            ),
            IpRefusal::Count => ("too many connections from this address", 1),
        };
        refused(match refusal {
            IpRefusal::Rate(_) => "ip_rate",
            IpRefusal::Count => "ip_count",
        });
        let header = format!("Retry-After: {retry_after}\r\n");
        self.answer_http(key, http::refusal(429, "rate_limited", message, &header));
        Step::Continue
    }
}

/// Counts an upgrade refused for `reason` (`metrics::UPGRADE_REFUSALS`).
fn refused(reason: &str) {
    crate::metrics::local(|m| m.upgrade_refused(reason));
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
