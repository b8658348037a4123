//! The HTTP/1.1 side of the public port: parsing a request head (httparse), the upgrade
//! answer, and refusals with JSON bodies (`docs/protocol.md` §1).

use std::fmt::Write;

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// A parsed request head, reduced to what the hub uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// `Authorization: Bearer` token.
    pub bearer: Option<String>,
    /// `token=` query parameter.
    pub query_token: Option<String>,
    /// `client=` query parameter.
    pub client: Option<String>,
    /// `Upgrade: websocket` and `Connection: upgrade` were both present.
    pub upgrade: bool,
    pub ws_key: Option<String>,
    pub ws_version: Option<String>,
    /// `Origin`, checked against `allowed_origins` (`origin.rs`).
    pub origin: Option<String>,
    /// The headers asked for by name (`parse_keeping`), as they came.
    pub kept: Vec<(String, String)>,
    /// Every `Sec-WebSocket-Extensions` value, joined by commas.
    pub extensions: Option<String>,
    /// `Sec-WebSocket-Protocol` values, as sent (the header may be repeated).
    pub subprotocols: Vec<String>,
}

/// Why a head could not be read; the connection gets a 400 (or 431) and is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// More bytes are needed.
    Incomplete,
    TooLarge,
    Malformed,
}

/// Parses the head at the start of `buf`; on success also returns its length.
pub fn parse(buf: &[u8]) -> Result<(Request, usize), HeadError> {
    parse_keeping(buf, &[])
}

/// [`parse`], keeping the headers named in `keep` (any case) in `Request::kept`.
pub fn parse_keeping(buf: &[u8], keep: &[String]) -> Result<(Request, usize), HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Err(HeadError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut out = Request {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        ..Request::default()
    };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "token" => out.query_token = Some(percent_decode(v)),
            "client" => out.client = Some(percent_decode(v)),
            _ => {}
        }
    }
    let (mut upgrade_ws, mut connection_upgrade) = (false, false);
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        let name = h.name;
        if keep.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            out.kept.push((name.to_string(), value.to_string()));
        }
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade_ws = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection_upgrade = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            out.ws_key = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            let all = out.extensions.get_or_insert_with(String::new);
            if !all.is_empty() {
                all.push_str(", ");
            }
            all.push_str(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            out.subprotocols.push(value.to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            out.ws_version = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("origin") {
            out.origin = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("authorization") {
            if let Some((scheme, token)) = value.split_once(' ') {
                if scheme.eq_ignore_ascii_case("bearer") {
                    out.bearer = Some(token.trim().to_string());
                }
            }
        }
    }
    out.upgrade = upgrade_ws && connection_upgrade;
    Ok((out, len))
}

impl Request {
    /// The token by precedence: header, then query.
    pub fn token(&self) -> Option<&str> {
        self.bearer
            .as_deref()
            .or(self.query_token.as_deref())
            .filter(|t| !t.is_empty())
    }

    /// A valid `Sec-WebSocket-Key` (16 bytes, base64) and version 13, or why not.
    pub fn check_websocket(&self) -> Result<&str, &'static str> {
        if self.method != "GET" {
            return Err("the upgrade must be a GET");
        }
        if self.ws_version.as_deref() != Some("13") {
            return Err("Sec-WebSocket-Version must be 13");
        }
        match self.ws_key.as_deref() {
            Some(k)
                if k.len() == 24
                    && k.ends_with("==")
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) =>
            {
                Ok(k)
            }
            _ => Err("missing or invalid Sec-WebSocket-Key"),
        }
    }
}

/// A query value as a browser's form encoding writes it: `+` is a space, `%XX` a byte, and a
/// `%` not followed by two hex digits is itself. Bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The `101 Switching Protocols` answer, naming the chosen subprotocol and the agreed
/// `Sec-WebSocket-Extensions`, if any.
pub fn switching_protocols(
    key: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(p) = subprotocol {
        let _ = write!(out, "Sec-WebSocket-Protocol: {p}\r\n");
    }
    if let Some(e) = extensions {
        let _ = write!(out, "Sec-WebSocket-Extensions: {e}\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A complete response with a JSON body; the connection is closed after it.
pub fn response(status: u16, body: &str, extra_headers: &str) -> Vec<u8> {
    let mut out = String::with_capacity(160 + body.len());
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        reason(status),
        body.len()
    );
    out.into_bytes()
}

/// A refusal: `{"error":"<code>","message":"..."}`.
pub fn refusal(status: u16, code: &str, message: &str, extra_headers: &str) -> Vec<u8> {
    let body = serde_json::json!({"error": code, "message": message}).to_string();
    response(status, &body, extra_headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /ws?client=web&token=a.b%2Ec HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn parses_an_upgrade() {
        let (r, n) = parse(UPGRADE.as_bytes()).unwrap();
        assert_eq!(n, UPGRADE.len());
        assert_eq!(r.path, "/ws");
        assert!(r.upgrade);
        assert_eq!(r.client.as_deref(), Some("web"));
        assert_eq!(r.token(), Some("a.b.c"));
        assert_eq!(r.check_websocket(), Ok("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(r.origin, None);
        let with_origin = UPGRADE.replace("Host: x\r\n", "Host: x\r\nOrigin: https://a.io\r\n");
        let origin = parse(with_origin.as_bytes()).unwrap().0.origin;
        assert_eq!(origin.as_deref(), Some("https://a.io"));
        let resp =
            String::from_utf8(switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", None, None)).unwrap();
        assert!(resp.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!resp.contains("Sec-WebSocket-Protocol"));
        let resp = switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", Some("ringhub.v1.proto"), None);
        let resp = String::from_utf8(resp).unwrap();
        assert!(resp.ends_with("\r\nSec-WebSocket-Protocol: ringhub.v1.proto\r\n\r\n"));
    }

    #[test]
    fn subprotocol_headers_are_kept() {
        let head = UPGRADE.replace(
            "Host: x\r\n",
            "Host: x\r\nSec-WebSocket-Protocol: a, b\r\nSec-WebSocket-Protocol: ringhub.v1.proto\r\n",
        );
        let r = parse(head.as_bytes()).unwrap().0;
        assert_eq!(r.subprotocols, ["a, b", "ringhub.v1.proto"]);
    }

    #[test]
    fn the_agreed_extension_is_answered() {
        let resp = switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", None, None);
        assert!(!String::from_utf8(resp).unwrap().contains("Extensions"));
        let resp =
            switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", None, Some("permessage-deflate"));
        assert!(String::from_utf8(resp)
            .unwrap()
            .ends_with("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"));
    }

    #[test]
    fn extension_offers_are_joined() {
        let head = UPGRADE.replace(
            "Host: x\r\n",
            "Host: x\r\nSec-WebSocket-Extensions: foo\r\nsec-websocket-extensions: permessage-deflate; server_max_window_bits=10\r\n",
        );
        assert_eq!(
            parse(head.as_bytes()).unwrap().0.extensions.as_deref(),
            Some("foo, permessage-deflate; server_max_window_bits=10")
        );
    }

    #[test]
    fn header_token_wins_over_query() {
        let head = UPGRADE.replace(
            "Host: x\r\n",
            "Host: x\r\nAuthorization: Bearer h.e.ader\r\n",
        );
        assert_eq!(parse(head.as_bytes()).unwrap().0.token(), Some("h.e.ader"));
    }

    #[test]
    fn incomplete_large_and_garbage() {
        assert_eq!(
            parse(&UPGRADE.as_bytes()[..20]).unwrap_err(),
            HeadError::Incomplete
        );
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse(&big).unwrap_err(), HeadError::TooLarge);
        assert_eq!(
            parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").unwrap_err(),
            HeadError::Malformed
        );
        assert_eq!(
            parse(b"\x00\x01garbage\r\n\r\n").unwrap_err(),
            HeadError::Malformed
        );
    }

    #[test]
    fn websocket_checks() {
        let no_version = UPGRADE.replace("Sec-WebSocket-Version: 13\r\n", "");
        assert!(parse(no_version.as_bytes())
            .unwrap()
            .0
            .check_websocket()
            .is_err());
        let bad_key = UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
        assert!(parse(bad_key.as_bytes())
            .unwrap()
            .0
            .check_websocket()
            .is_err());
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
        assert_eq!(percent_decode("a+b%2Bc%20d"), "a b+c d");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
