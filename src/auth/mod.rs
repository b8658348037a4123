//! Token verification (`docs/protocol.md` §1, Tokens): JWT through `jsonwebtoken`, with
//! keys from the shared secret, a PEM public key, or a JWKS file where `kid` picks the key.

mod identity;
mod mint;
pub mod opaque;
pub mod sign;

pub use identity::{Claims, Identity};
pub use mint::{mint, MintOptions};

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::Config;

/// Longest accepted `sub`, in bytes.
pub const MAX_USER: usize = 128;
/// Largest accepted `info` claim, in bytes of JSON.
pub const MAX_INFO: usize = 1024;

/// A JWT's claims, as its payload spells them.
#[derive(Deserialize)]
struct JwtClaims {
    sub: String,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    info: Option<Box<RawValue>>,
}

/// Why a token was refused; the reason is for logs and metrics, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("malformed token")]
    Malformed,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("bad signature")]
    BadSignature,
    #[error("no key for this token's algorithm or kid")]
    NoKey,
    #[error("wrong issuer or audience")]
    WrongIssuerOrAudience,
    #[error("invalid claims: {0}")]
    Claims(&'static str),
    #[error("token revoked")]
    Revoked,
}

impl AuthError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Malformed => "malformed",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::BadSignature => "bad_signature",
            AuthError::NoKey => "no_key",
            AuthError::WrongIssuerOrAudience => "issuer_or_audience",
            AuthError::Claims(_) => "claims",
            AuthError::Revoked => "revoked",
        }
    }
}

struct Key {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// Verifies tokens against the configured keys. Shared by all shards (immutable).
pub struct Verifier {
    keys: Vec<Key>,
    leeway: u64,
    issuer: Option<String>,
    audience: Option<String>,
}

const HS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
const RSA: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
];
const EC: [Algorithm; 2] = [Algorithm::ES256, Algorithm::ES384];

impl Verifier {
    /// Loads every configured key. `secret` is the HS secret in force (the configured one,
    /// or the random development secret).
    pub fn new(config: &Config, secret: &[u8]) -> Result<Verifier, String> {
        let mut keys = Vec::new();
        if !secret.is_empty() {
            keys.push(Key {
                kid: None,
                algorithms: HS.to_vec(),
                key: DecodingKey::from_secret(secret),
            });
        }
        if let Some(path) = &config.jwt_public_key {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            keys.push(pem_key(&pem).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        if let Some(path) = &config.jwks_file {
            let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let set: JwkSet =
                serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            for jwk in &set.keys {
                let key =
                    DecodingKey::from_jwk(jwk).map_err(|e| format!("{}: {e}", path.display()))?;
                let algorithms = match jwk.common.key_algorithm {
                    Some(alg) => vec![alg
                        .to_string()
                        .parse()
                        .map_err(|_| format!("{}: unsupported alg {alg}", path.display()))?],
                    None => family_of(&key),
                };
                keys.push(Key {
                    kid: jwk.common.key_id.clone(),
                    algorithms,
                    key,
                });
            }
        }
        Ok(Verifier {
            keys,
            leeway: config.jwt_leeway.as_secs(),
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
    }

    /// Checks a token now.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify_at(token, unix_now())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Identity, AuthError> {
        use jsonwebtoken::errors::ErrorKind as K;
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let key = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(&header.alg))
            .find(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .ok_or(AuthError::NoKey)?;
        let mut v = Validation::new(header.alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        let data =
            jsonwebtoken::decode::<JwtClaims>(token, &key.key, &v).map_err(|e| match e.kind() {
                K::ExpiredSignature => AuthError::Expired,
                K::ImmatureSignature => AuthError::NotYetValid,
                K::InvalidSignature | K::InvalidAlgorithm | K::InvalidKeyFormat => {
                    AuthError::BadSignature
                }
                K::InvalidIssuer | K::InvalidAudience => AuthError::WrongIssuerOrAudience,
                K::MissingRequiredClaim(c) if c == "iss" || c == "aud" => {
                    AuthError::WrongIssuerOrAudience
                }
                K::MissingRequiredClaim(_) => AuthError::Claims("sub and exp are required"),
                K::Json(_) => AuthError::Claims("claims of the wrong type"),
                _ => AuthError::Malformed,
            })?;
        let c = data.claims;
        check_sub(&c.sub)?;
        if let Some(iat) = c.iat {
            if iat > now + self.leeway {
                return Err(AuthError::NotYetValid);
            }
        }
        let info = checked_info(c.info)?;
        Ok(Claims {
            user: c.sub,
            expires_at: c.exp,
            issued_at: c.iat,
            jti: c.jti,
            channels: c.channels,
            publish: c.publish,
            info,
        }
        .into())
    }
}

type PemLoader = fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>;

fn pem_key(pem: &[u8]) -> Result<Key, String> {
    let attempts: [(PemLoader, &[Algorithm]); 3] = [
        (DecodingKey::from_rsa_pem, &RSA),
        (DecodingKey::from_ec_pem, &EC),
        (DecodingKey::from_ed_pem, &[Algorithm::EdDSA]),
    ];
    for (load, algorithms) in attempts {
        if let Ok(key) = load(pem) {
            return Ok(Key {
                kid: None,
                algorithms: algorithms.to_vec(),
                key,
            });
        }
    }
    Err("not an RSA, EC or Ed25519 public key in PEM form".into())
}

fn family_of(key: &DecodingKey) -> Vec<Algorithm> {
    use jsonwebtoken::AlgorithmFamily as F;
    match key.family() {
        F::Hmac => HS.to_vec(),
        F::Rsa => RSA.to_vec(),
        F::Ec => EC.to_vec(),
        F::Ed => vec![Algorithm::EdDSA],
    }
}

/// Seconds since the Unix epoch.
/// Milliseconds since the Unix epoch (`ts` fields, token deadlines in milliseconds).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;

/// `sub` within bounds: what every identity, JWT or opaque, is checked for.
pub(crate) fn check_sub(sub: &str) -> Result<(), AuthError> {
    if sub.is_empty() || sub.len() > MAX_USER {
        return Err(AuthError::Claims("sub must be 1..128 bytes"));
    }
    Ok(())
}

/// The `info` claim as raw JSON: an object of at most `MAX_INFO` bytes, `{}` when absent.
pub(crate) fn checked_info(info: Option<Box<RawValue>>) -> Result<Box<str>, AuthError> {
    match info {
        Some(raw) if raw.get().len() > MAX_INFO => Err(AuthError::Claims("info over 1 KiB")),
        Some(raw) if !raw.get().trim_start().starts_with('{') => {
            Err(AuthError::Claims("info must be an object"))
        }
        Some(raw) => Ok(raw.get().into()),
        None => Ok("{}".into()),
    }
}
