//! Minting HS-signed tokens: `ringhub token`, the demo token at start, tests and the bench.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// What to put in a token.
#[derive(Debug, Clone, Default)]
pub struct MintOptions {
    pub user: String,
    /// Lifetime in seconds.
    pub ttl: u64,
    pub channels: Vec<String>,
    pub publish: Vec<String>,
    pub jti: Option<String>,
    pub info: Option<serde_json::Value>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// `iat`, when not now.
    pub issued_at: Option<u64>,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    channels: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    publish: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Signs an HS256 token with `secret`.
pub fn mint(secret: &[u8], opts: &MintOptions) -> String {
    let now = super::unix_now();
    let claims = Claims {
        sub: &opts.user,
        exp: now + opts.ttl,
        iat: opts.issued_at.unwrap_or(now),
        channels: &opts.channels,
        publish: &opts.publish,
        jti: opts.jti.as_deref(),
        info: opts.info.as_ref(),
        iss: opts.issuer.as_deref(),
        aud: opts.audience.as_deref(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 encoding of plain claims cannot fail")
}
