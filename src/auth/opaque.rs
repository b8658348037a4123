//! Credentials the hub cannot verify itself (docs/proxies.md, Connect proxy and token
//! store): what the connect proxy answers and what the token store holds, each read into the
//! same [`Identity`] a JWT gives, with the same bounds on `sub` and `info`.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{AuthError, Claims, Identity};

/// Longest close reason a backend's refusal keeps (a close frame holds 123 bytes).
const MAX_REASON: usize = 120;

/// Is this a JWT (three base64url parts whose header parses)? Anything else is opaque.
pub fn is_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2 && jsonwebtoken::decode_header(token).is_ok()
}

/// The SHA-256 of a token: the token store's key (in hex) and the shard cache's.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Why a credential the hub asked about was not accepted, and so how the client is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, expired or refused token: close 4001.
    Unauthorized(Box<str>),
    /// The backend says forbidden: close 4003.
    Forbidden(Box<str>),
    /// The backend or the store did not answer usably: close 1013, try again later.
    Unavailable(Box<str>),
}

/// `1013 Try Again Later` (RFC 6455 §7.4, IANA registry): the client may reconnect.
pub const RETRY_LATER: u16 = 1013;

impl Refusal {
    pub fn close_code(&self) -> u16 {
        match self {
            Refusal::Unauthorized(_) => 4001,
            Refusal::Forbidden(_) => 4003,
            Refusal::Unavailable(_) => RETRY_LATER,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Refusal::Unauthorized(r) | Refusal::Forbidden(r) | Refusal::Unavailable(r) => r,
        }
    }
}

/// What the connect proxy answers: `{user, channels, publish, expires_at, info}` or
/// `{error: {code, reason}}`.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    info: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<BackendError>,
}

#[derive(Deserialize)]
struct BackendError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default, alias = "message")]
    reason: Option<String>,
}

/// Reads the connect proxy's answer (a 200's body) at `now` (unix seconds).
pub fn from_answer(body: &[u8], now: u64) -> Result<Identity, Refusal> {
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let answer = match is_object.then(|| serde_json::from_slice::<Answer>(body)) {
        Some(Ok(a)) => a,
        _ => {
            let reason = "the connect backend's answer is not the expected JSON object";
            return Err(Refusal::Unavailable(reason.into()));
        }
    };
    if let Some(e) = answer.error {
        let reason = e.reason.unwrap_or_else(|| "refused by the backend".into());
        let reason = truncate(&reason, MAX_REASON).into();
        let forbidden = match &e.code {
            Some(serde_json::Value::String(c)) => c == "forbidden",
            Some(serde_json::Value::Number(n)) => matches!(n.as_u64(), Some(403 | 4003)),
            _ => false,
        };
        return Err(if forbidden {
            Refusal::Forbidden(reason)
        } else {
            Refusal::Unauthorized(reason)
        });
    }
    let (Some(user), Some(exp)) = (answer.user, answer.expires_at) else {
        let reason = "the connect backend's answer has no user or expires_at";
        return Err(Refusal::Unavailable(reason.into()));
    };
    let record = Record {
        sub: user,
        exp,
        iat: None,
        channels: answer.channels,
        publish: answer.publish,
        info: answer.info,
    };
    record.identity(now).map_err(|e| match e {
        AuthError::Expired => Refusal::Unauthorized("expired".into()),
        e => Refusal::Unavailable(format!("the connect backend's answer: {e}").into()),
    })
}

/// What the token store holds under `<prefix><sha256 hex>`.
#[derive(Deserialize)]
struct Record {
    sub: String,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    info: Option<Box<RawValue>>,
}

/// Reads a token store record at `now` (unix seconds): expired or malformed is refused.
pub fn from_record(value: &[u8], now: u64) -> Result<Identity, AuthError> {
    let is_object = value.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match is_object.then(|| serde_json::from_slice::<Record>(value)) {
        Some(Ok(record)) => record.identity(now),
        _ => Err(AuthError::Claims(
            "the stored token is not the expected JSON object",
        )),
    }
}

impl Record {
    /// The identity, checked as a JWT's claims are. `issued_at` is when the hub was told
    /// (the record's `iat` if it has one): a revocation by user refuses what was vouched
    /// for before it, and lets in what is vouched for again after.
    fn identity(self, now: u64) -> Result<Identity, AuthError> {
        super::check_sub(&self.sub)?;
        if self.exp <= now {
            return Err(AuthError::Expired);
        }
        let info = super::checked_info(self.info)?;
        Ok(Claims {
            user: self.sub,
            expires_at: self.exp,
            issued_at: Some(self.iat.unwrap_or(now)),
            jti: None,
            channels: self.channels,
            publish: self.publish,
            info,
        }
        .into())
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_are_told_from_opaque_tokens() {
        let opts = crate::auth::MintOptions {
            user: "alice".into(),
            ttl: 60,
            ..Default::default()
        };
        let jwt = crate::auth::mint(b"s", &opts);
        assert!(is_jwt(&jwt));
        for opaque in ["abc", "a.b.c", "tok_3f9a1c", "", "x.y"] {
            assert!(!is_jwt(opaque), "{opaque}");
        }
    }

    #[test]
    fn an_answer_is_an_identity_or_a_refusal() {
        let ok = br#"{"user":"alice","expires_at":2000,"channels":["t:1"],"info":{"a":1}}"#;
        let id = from_answer(ok, 1000).unwrap();
        assert_eq!((id.user(), id.expires_at), ("alice", 2000));
        assert_eq!(
            (id.channels().collect::<Vec<_>>(), id.issued_at),
            (vec!["t:1"], Some(1000))
        );
        assert_eq!(id.info(), r#"{"a":1}"#);
        let no = br#"{"error":{"code":"forbidden","reason":"banned"}}"#;
        assert_eq!(
            from_answer(no, 0).unwrap_err(),
            Refusal::Forbidden("banned".into())
        );
        let no = br#"{"error":{"code":4001,"reason":"bad"}}"#;
        assert_eq!(from_answer(no, 0).unwrap_err().close_code(), 4001);
        for bad in [&b"[]"[..], b"{}", b"nope", br#"{"user":"","expires_at":9}"#] {
            assert_eq!(from_answer(bad, 0).unwrap_err().close_code(), 1013);
        }
        let old = br#"{"user":"a","expires_at":5}"#;
        assert_eq!(from_answer(old, 10).unwrap_err().close_code(), 4001);
    }

    #[test]
    fn a_record_is_checked_like_claims() {
        let id = from_record(br#"{"sub":"bob","exp":20,"publish":["c:*"]}"#, 10).unwrap();
        assert_eq!(
            (id.user(), id.publish().len(), id.issued_at),
            ("bob", 1, Some(10))
        );
        assert!(matches!(
            from_record(br#"{"sub":"bob","exp":5}"#, 10),
            Err(AuthError::Expired)
        ));
        assert!(from_record(b"[1]", 0).is_err());
        assert!(from_record(br#"{"sub":"b","exp":20,"info":[1]}"#, 0).is_err());
    }
}
