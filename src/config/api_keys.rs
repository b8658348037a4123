//! Server API keys: a name, the SHA-256 digest of the key, and the scopes it grants
//! (docs/api.md#keys). They come from two places: `api_keys`, plain digests that grant
//! every scope (named `default`), and `api_keys_file`, a TOML file of named entries that
//! the hub reads at start and again on each `SIGHUP`:
//!
//! ```toml
//! [[keys]]
//! name = "game-backend"
//! sha256 = "<64 hex digits>"
//! scopes = ["publish", "presence"]
//! ```
//!
//! Several entries may share a name: that is how a key is rotated (add the new one, move
//! the callers, remove the old one), and logs and metrics, which carry only the name, see
//! one caller throughout.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::Config;

/// What a key may do; each server API endpoint needs one (`control/endpoint.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Publications, broadcasts and direct messages.
    Publish,
    /// Who is on a channel.
    Presence,
    /// Acting against users: revocations, disconnects, mutes.
    Revoke,
    /// Server-side subscribe and unsubscribe.
    Subscriptions,
    /// Reading state: history, info, the list of mutes, the OpenAPI document.
    Read,
    /// Everything, the scopes above and any added later.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Publish,
        Scope::Presence,
        Scope::Revoke,
        Scope::Subscriptions,
        Scope::Read,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Publish => "publish",
            Scope::Presence => "presence",
            Scope::Revoke => "revoke",
            Scope::Subscriptions => "subscriptions",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// What a plain digest in `api_keys` grants.
    pub const EVERY: Scopes = Scopes(1 << Scope::Admin as u8);

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// Does the set grant `scope` (`admin` grants all)?
    pub fn grants(self, scope: Scope) -> bool {
        self.0 & (scope.bit() | Scope::Admin.bit()) != 0
    }
}

/// One accepted key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: Arc<str>,
    pub digest: [u8; 32],
    pub scopes: Scopes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    keys: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: String,
    scopes: Vec<Scope>,
}

fn digest(hex: &str) -> Option<[u8; 32]> {
    <[u8; 32] as hex::FromHex>::from_hex(hex.trim()).ok()
}

/// The keys of a key file's text (`path` only names it in errors).
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<ApiKey>, String> {
    let file: File = toml::from_str(text)
        .map_err(|e| format!("{}: {}", path.display(), e.message().replace('\n', " ")))?;
    let mut keys = Vec::with_capacity(file.keys.len());
    for (i, entry) in file.keys.into_iter().enumerate() {
        let at = |what: &str| format!("{}: keys[{i}]: {what}", path.display());
        if !(1..=64).contains(&entry.name.len())
            || !entry
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(at("name must be 1..64 of A-Z a-z 0-9 - _ ."));
        }
        let digest = digest(&entry.sha256)
            .ok_or_else(|| at("sha256 must be a SHA-256 digest: 64 hex characters"))?;
        if entry.scopes.is_empty() {
            return Err(at("scopes must name at least one scope"));
        }
        keys.push(ApiKey {
            name: entry.name.into(),
            digest,
            scopes: Scopes::of(&entry.scopes),
        });
    }
    Ok(keys)
}

impl Config {
    /// Every key in force: the plain digests of `api_keys`, then those of `api_keys_file`
    /// (read now), or why they cannot be used.
    pub fn load_api_keys(&self) -> Result<Vec<ApiKey>, String> {
        let mut keys = Vec::new();
        for hex in &self.api_keys {
            let digest = digest(hex).ok_or("expected SHA-256 digests: 64 hex characters each")?;
            keys.push(ApiKey {
                name: "default".into(),
                digest,
                scopes: Scopes::EVERY,
            });
        }
        if let Some(path) = &self.api_keys_file {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            keys.extend(parse_file(path, &text)?);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn reads_named_scoped_entries() {
        let text = format!(
            "[[keys]]\nname = \"backend\"\nsha256 = \"{DIGEST}\"\nscopes = [\"publish\", \"read\"]\n\
             [[keys]]\nname = \"backend\"\nsha256 = \"{DIGEST}\"\nscopes = [\"admin\"]\n"
        );
        let keys = parse_file(Path::new("k.toml"), &text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(&*keys[0].name, "backend");
        assert!(keys[0].scopes.grants(Scope::Publish));
        assert!(keys[0].scopes.grants(Scope::Read));
        assert!(!keys[0].scopes.grants(Scope::Revoke));
        assert!(!keys[0].scopes.grants(Scope::Admin));
        for scope in Scope::ALL {
            assert!(keys[1].scopes.grants(scope));
            assert!(Scopes::EVERY.grants(scope));
        }
    }

    #[test]
    fn refuses_bad_entries() {
        let bad = [
            format!("[[keys]]\nname = \"\"\nsha256 = \"{DIGEST}\"\nscopes = [\"read\"]\n"),
            "[[keys]]\nname = \"a\"\nsha256 = \"abc\"\nscopes = [\"read\"]\n".to_string(),
            format!("[[keys]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nscopes = []\n"),
            format!("[[keys]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nscopes = [\"root\"]\n"),
            format!("[[keys]]\nname = \"a\"\nkey = \"{DIGEST}\"\nscopes = [\"read\"]\n"),
            "not toml [".to_string(),
        ];
        for text in bad {
            assert!(parse_file(Path::new("k.toml"), &text).is_err(), "{text}");
        }
        assert!(parse_file(Path::new("k.toml"), "").unwrap().is_empty());
    }
}
