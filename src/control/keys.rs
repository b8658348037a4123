//! The API keys in force, replaced whole on reload (`SIGHUP`, through `hub::reload`): a
//! request reads the current set under a read lock held for one lookup, a reload builds
//! the new set first and swaps it in only when the whole file was good. Keys are kept as
//! SHA-256 digests only; logs and metrics name a key by its entry's name.

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::{ApiKey, Config, Scopes};

/// Labels of `ringhub_api_key_reloads`: `ok` or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: &'static str,
}

pub struct Keys {
    set: RwLock<Arc<Vec<ApiKey>>>,
    /// Reloads by result.
    pub reloads: Family<ReloadLabels, Counter>,
}

/// The key a request presented: its entry's name and scopes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: Arc<str>,
    pub scopes: Scopes,
}

impl Keys {
    /// The keys of `config` (already validated, so a failure here is a file that changed
    /// since: it is logged, and the API starts without keys until a good reload).
    pub fn new(config: &Config) -> Keys {
        let keys = config.load_api_keys().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the API keys; the server API refuses every key");
            Vec::new()
        });
        Keys {
            set: RwLock::new(Arc::new(keys)),
            reloads: Family::default(),
        }
    }

    fn current(&self) -> Arc<Vec<ApiKey>> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// Reads `config`'s keys again; on any error keeps the old ones. Ok: a summary for the
    /// log (how many keys, under which names).
    pub fn reload(&self, config: &Config) -> Result<String, String> {
        let result = config.load_api_keys();
        let label = ReloadLabels {
            result: if result.is_ok() { "ok" } else { "failed" },
        };
        self.reloads.get_or_create(&label).inc();
        let keys = result?;
        let mut names: Vec<&str> = keys.iter().map(|k| &*k.name).collect();
        names.sort_unstable();
        names.dedup();
        let summary = format!("{} API keys: {}", keys.len(), names.join(", "));
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(summary)
    }

    /// The entry whose digest is this key's. Every digest is compared in constant time, and
    /// the last match is picked without a branch on the comparisons, so that the time taken
    /// does not tell which entry (or how much of a digest) matched.
    pub fn find(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let keys = self.current();
        let mut found = u64::MAX;
        for (i, key) in keys.iter().enumerate() {
            found.conditional_assign(&(i as u64), key.digest.ct_eq(&digest));
        }
        let key = keys.get(usize::try_from(found).ok()?)?;
        Some(Caller {
            name: key.name.clone(),
            scopes: key.scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scope;

    fn hex_digest(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    #[test]
    fn finds_plain_digests_and_named_entries_and_reloads() {
        let dir = std::env::temp_dir().join(format!("ringhub-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys.toml");
        let entry = |key: &str| {
            format!(
                "[[keys]]\nname = \"backend\"\nsha256 = \"{}\"\nscopes = [\"publish\"]\n",
                hex_digest(key)
            )
        };
        std::fs::write(&file, entry("one")).unwrap();
        let config = Config {
            api_keys: vec![hex_digest("plain")],
            api_keys_file: Some(file.clone()),
            ..Config::default()
        };
        let keys = Keys::new(&config);
        let plain = keys.find("plain").unwrap();
        assert_eq!(&*plain.name, "default");
        assert!(plain.scopes.grants(Scope::Revoke));
        let one = keys.find("one").unwrap();
        assert_eq!(&*one.name, "backend");
        assert!(one.scopes.grants(Scope::Publish) && !one.scopes.grants(Scope::Read));
        assert!(keys.find("two").is_none());

        std::fs::write(&file, entry("one") + &entry("two")).unwrap();
        assert!(keys.reload(&config).unwrap().contains("3 API keys"));
        assert!(keys.find("two").is_some());

        std::fs::write(&file, "[[keys]]\nname = \"x\"\n").unwrap();
        assert!(keys.reload(&config).is_err());
        assert!(keys.find("two").is_some(), "a bad file keeps the old keys");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
