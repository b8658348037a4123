//! `Sec-WebSocket-Extensions` negotiation of permessage-deflate (RFC 7692 §5, §7.1).
//!
//! The hub compresses every message on its own (it always answers
//! `server_no_context_takeover`): a publication's compressed frame then depends only on its
//! bytes and the window size, so it is made once per window size and shared by every
//! recipient (fan-out stays encode-once). What the client keeps between its messages is its
//! choice, unless the hub is configured to ask it to keep nothing
//! (`client_no_context_takeover`, answered even when not offered, §7.1.1.2).

/// What a connection agreed to, kept for its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    /// The LZ77 window the hub compresses with: `server_max_window_bits`, 15 when the
    /// client set no limit.
    pub server_bits: u8,
    /// The client starts each message afresh: no inflate state lives between messages.
    pub client_no_context: bool,
}

/// The hub's side of the negotiation.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Let a client keep its compression context between messages when it does not offer
    /// `client_no_context_takeover` (costs an inflate state per connection).
    pub client_context: bool,
}

/// The first acceptable permessage-deflate offer among `header` (every
/// `Sec-WebSocket-Extensions` value, joined by commas), and the response's header value.
/// Offers of other extensions, and offers the hub cannot honour, are declined (§5).
pub fn negotiate(header: &str, policy: Policy) -> Option<(Deflate, String)> {
    split_outside_quotes(header, ',').find_map(|offer| accept(offer, policy))
}

fn accept(offer: &str, policy: Policy) -> Option<(Deflate, String)> {
    let mut parts = split_outside_quotes(offer, ';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("permessage-deflate")
    {
        return None;
    }
    let mut seen = [false; 4];
    let mut server_bits = None;
    let mut client_no_context = false;
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
            None => (param.trim(), None),
        };
        let which = PARAMS.iter().position(|p| name.eq_ignore_ascii_case(p))?;
        // A parameter given twice makes the offer invalid (§7.1).
        if std::mem::replace(&mut seen[which], true) {
            return None;
        }
        match (which, value) {
            (SERVER_NO_CONTEXT, None) => {}
            (CLIENT_NO_CONTEXT, None) => client_no_context = true,
            (SERVER_BITS, Some(v)) => server_bits = Some(window_bits(v)?),
            // The hub inflates with the largest window, so whatever the client picks is
            // fine: it need not answer this one (§7.1.2.2).
            (CLIENT_BITS, None) => {}
            (CLIENT_BITS, Some(v)) => {
                window_bits(v)?;
            }
            _ => return None,
        }
    }
    // flate2 compresses raw deflate with windows of 9 to 15 bits only (zlib's 8 is 9): an
    // offer that asks for 8 is declined rather than answered with a window it would not get.
    if server_bits == Some(8) {
        return None;
    }
    let client_no_context = client_no_context || !policy.client_context;
    let mut answer = String::from("permessage-deflate; server_no_context_takeover");
    if client_no_context {
        answer.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = server_bits {
        answer.push_str(&format!("; server_max_window_bits={bits}"));
    }
    let agreed = Deflate {
        server_bits: server_bits.unwrap_or(15),
        client_no_context,
    };
    Some((agreed, answer))
}

const PARAMS: [&str; 4] = [
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
];
const SERVER_NO_CONTEXT: usize = 0;
const CLIENT_NO_CONTEXT: usize = 1;
const SERVER_BITS: usize = 2;
const CLIENT_BITS: usize = 3;

/// A window size: 8 to 15, decimal digits without a leading zero (§7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// A token or a quoted string's content (no escapes are needed for these values).
fn unquote(v: &str) -> Option<&str> {
    match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').filter(|s| !s.contains('"')),
        None => Some(v),
    }
}

/// Splits on `sep`, except inside a quoted string.
fn split_outside_quotes(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut quoted = false;
    let mut pieces = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                pieces.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&s[start..]);
    pieces.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: Policy = Policy {
        client_context: true,
    };
    const LEAN: Policy = Policy {
        client_context: false,
    };

    fn answer(offer: &str, policy: Policy) -> Option<String> {
        negotiate(offer, policy).map(|(_, a)| a)
    }

    #[test]
    fn a_bare_offer_keeps_the_clients_context_when_allowed() {
        let (d, a) = negotiate("permessage-deflate", HUB).unwrap();
        assert_eq!(a, "permessage-deflate; server_no_context_takeover");
        assert_eq!(
            d,
            Deflate {
                server_bits: 15,
                client_no_context: false
            }
        );
        assert_eq!(
            answer("permessage-deflate", LEAN).unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn each_parameter() {
        let (d, a) = negotiate(
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10",
            HUB,
        )
        .unwrap();
        assert_eq!(a, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10");
        assert_eq!(d.server_bits, 10);
        assert!(d.client_no_context);
        assert_eq!(
            answer("permessage-deflate; server_no_context_takeover", HUB).unwrap(),
            "permessage-deflate; server_no_context_takeover"
        );
        // client_max_window_bits, with or without a value, needs no answer.
        for offer in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=\"12\"",
        ] {
            assert_eq!(
                answer(offer, HUB).unwrap(),
                "permessage-deflate; server_no_context_takeover",
                "{offer}"
            );
        }
        assert_eq!(
            negotiate("permessage-deflate; server_max_window_bits=\"9\"", HUB)
                .unwrap()
                .0
                .server_bits,
            9
        );
    }

    #[test]
    fn invalid_offers_are_declined_and_the_next_one_taken() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; client_max_window_bits=99",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; unknown_param",
            "x-webkit-deflate-frame",
            "",
        ] {
            assert_eq!(answer(bad, HUB), None, "{bad}");
        }
        let (d, a) = negotiate(
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=12, permessage-deflate",
            HUB,
        )
        .unwrap();
        assert_eq!(d.server_bits, 12);
        assert!(a.ends_with("server_max_window_bits=12"));
        assert_eq!(
            answer("foo; bar=\"a,b\", permessage-deflate", HUB).unwrap(),
            "permessage-deflate; server_no_context_takeover"
        );
    }

    #[test]
    fn what_browsers_send() {
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits", LEAN).unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        // Case-insensitive names, spaces around separators.
        assert_eq!(
            negotiate(
                " Permessage-Deflate ;Server_Max_Window_Bits = 11 ; CLIENT_NO_CONTEXT_TAKEOVER",
                HUB
            )
            .unwrap()
            .0,
            Deflate {
                server_bits: 11,
                client_no_context: true
            }
        );
    }
}
