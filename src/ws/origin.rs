//! The `Origin` allowlist of the WebSocket upgrade (`allowed_origins`, docs/security.md).
//!
//! An origin is `scheme://host[:port]` (RFC 6454): the check compares all three, exactly,
//! with the default port filled in (80 for `http`, 443 for `https`) and scheme and host
//! folded to lower case. An entry is such an origin, or one whose host starts with `*.`:
//! `https://*.example.com` allows `https://a.example.com` and `https://a.b.example.com`,
//! and neither `https://example.com` nor `https://example.com.evil.io` nor
//! `http://a.example.com`. An origin that does not parse (a path, user info, no scheme)
//! matches nothing; `null` (what sandboxed pages send) matches only an entry `null`.

use serde::{Deserialize, Deserializer};

/// One parsed origin or pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    scheme: String,
    /// The host, or for a pattern the suffix after `*` (starting with `.`).
    host: String,
    port: u16,
    wildcard: bool,
}

/// The allowed origins; empty allows any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    entries: Vec<Parsed>,
    null: bool,
}

fn parse(text: &str, pattern: bool) -> Option<Parsed> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    if rest.is_empty() || rest.bytes().any(|b| b"/?#@\\ ".contains(&b)) {
        return None;
    }
    let (host, port) = match rest.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        Some(v6) => {
            let (addr, after) = v6.split_once(']')?;
            (format!("[{addr}]"), after.strip_prefix(':'))
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (rest.to_string(), None),
        },
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok()?,
        None => match scheme.as_str() {
            "http" | "ws" => 80,
            "https" | "wss" => 443,
            _ => return None,
        },
    };
    let host = host.to_ascii_lowercase();
    let (host, wildcard) = match host.strip_prefix('*') {
        Some(suffix) if pattern && suffix.starts_with('.') && suffix.len() > 1 => {
            (suffix.to_string(), true)
        }
        _ => (host, false),
    };
    if host.is_empty() || host.contains('*') || host.contains(':') && !host.starts_with('[') {
        return None;
    }
    Some(Parsed {
        scheme,
        host,
        port,
        wildcard,
    })
}

impl Origins {
    /// The allowlist of these entries, or the first one that is not an origin or pattern.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Origins, String> {
        let mut out = Origins::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry == "null" {
                out.null = true;
                continue;
            }
            let parsed = parse(entry, true).ok_or_else(|| {
                format!("{entry:?} is not an origin (scheme://host[:port], or scheme://*.domain)")
            })?;
            out.entries.push(parsed);
        }
        Ok(out)
    }

    /// No list: any origin is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && !self.null
    }

    /// Does the list allow this `Origin` header value? An empty list allows all.
    pub fn allows(&self, origin: &str) -> bool {
        if self.is_empty() {
            return true;
        }
        let origin = origin.trim();
        if origin == "null" {
            return self.null;
        }
        let Some(o) = parse(origin, false) else {
            return false;
        };
        self.entries.iter().any(|e| {
            e.scheme == o.scheme
                && e.port == o.port
                && match e.wildcard {
                    // `.example.com`: at least one label before it.
                    true => o.host.len() > e.host.len() && o.host.ends_with(&e.host),
                    false => e.host == o.host,
                }
        })
    }
}

impl<'de> Deserialize<'de> for Origins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Origins, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        Origins::new(&entries).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_on_scheme_host_and_port() {
        let o = Origins::new(&["https://game.example.com", "http://localhost:3000"]).unwrap();
        assert!(o.allows("https://game.example.com"));
        assert!(o.allows("https://GAME.example.com:443"));
        assert!(o.allows("http://localhost:3000"));
        assert!(!o.allows("http://game.example.com"));
        assert!(!o.allows("https://game.example.com:8443"));
        assert!(!o.allows("https://game.example.com.evil.io"));
        assert!(!o.allows("https://evilgame.example.com"));
        assert!(!o.allows("http://localhost:3001"));
        assert!(!o.allows("http://localhost"));
        assert!(!o.allows("https://game.example.com/path"));
        assert!(!o.allows("https://user@game.example.com"));
        assert!(!o.allows("game.example.com"));
        assert!(!o.allows("null"));
        assert!(!o.allows(""));
    }

    #[test]
    fn wildcard_subdomains() {
        let o = Origins::new(&["https://*.example.com"]).unwrap();
        assert!(o.allows("https://a.example.com"));
        assert!(o.allows("https://a.b.example.com"));
        assert!(!o.allows("https://example.com"));
        assert!(!o.allows("https://.example.com"));
        assert!(!o.allows("https://example.com.evil.io"));
        assert!(!o.allows("https://a.example.com.evil.io"));
        assert!(!o.allows("https://aexample.com"));
        assert!(!o.allows("http://a.example.com"));
        assert!(!o.allows("https://a.example.com:8443"));
    }

    #[test]
    fn ipv6_null_and_empty() {
        let o = Origins::new(&["http://[::1]:8080", "null"]).unwrap();
        assert!(o.allows("http://[::1]:8080"));
        assert!(!o.allows("http://[::1]:8081"));
        assert!(o.allows("null"));
        assert!(Origins::default().allows("https://anything.io"));
        assert!(Origins::new::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_is_not_an_origin() {
        for bad in [
            "example.com",
            "https://",
            "https://a.example.com/",
            "https://*example.com",
            "https://a.*.example.com",
            "https://*.",
            "ftp://example.com",
            "https://example.com:99999",
            "https://a:b:c",
        ] {
            assert!(Origins::new(&[bad]).is_err(), "{bad}");
        }
    }
}
