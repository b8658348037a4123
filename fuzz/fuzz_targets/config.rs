//! The configuration (`ringhub::config`): arbitrary TOML text and `RINGHUB_*` variables
//! through the fold and the checks `main` runs (`Config::from_text`, then `validate`),
//! without the process environment or a file.
//!
//! Input: the TOML text, then after the first NUL byte one variable per line, `NAME=VALUE`
//! (`RINGHUB_` is put in front of NAME), then after a second NUL byte flags the same way.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ringhub::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let toml = parts.next().unwrap_or("");
    let pairs = |part: Option<&str>, prefix: &str| -> Vec<(String, String)> {
        let lines = part.unwrap_or("").lines();
        let pairs = lines.filter_map(|l| l.split_once('='));
        pairs
            .map(|(k, v)| (format!("{prefix}{k}"), v.to_string()))
            .collect()
    };
    let vars = pairs(parts.next(), "RINGHUB_");
    let flags = pairs(parts.next(), "");
    let Ok(config) = Config::from_text(Path::new("fuzz.toml"), toml, vars, flags) else {
        return;
    };
    if config.validate().is_err() {
        return;
    }
    // What the hub asks of a valid configuration as it starts and runs.
    let _ = config.shard_count();
    let _ = config.namespace("room:1");
    let _ = config.keeps_history("chat");
    if let Ok(routes) = ringhub::config::Routes::new(&config) {
        let _ = routes.backend("a.b");
    }
});
