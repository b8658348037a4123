//! The three sources of settings folded into one TOML table — the file, then `RINGHUB_<KEY>`
//! variables, then flags, each replacing a top-level key of the one before — and that table
//! deserialized once into [`Config`]. Variables and flags are strings; [`lenient`] parses
//! each as its field's type, so no list of names is kept here beside the struct.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{env, lenient, value_err, Config, ConfigError};

/// Where a top-level key was last set, to name it when its value does not fit.
enum Origin {
    File(PathBuf),
    Var(String),
    Flag,
}

impl Config {
    /// Reads the file (if any), then applies `vars` (the process environment in `main`).
    pub fn load(
        file: Option<PathBuf>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Config::load_with_flags(file, vars, [])
    }

    /// [`Config::load`], then `flags`: `(key, value)` pairs from the command line, applied in
    /// order. Unknown `RINGHUB_*` names and keys are refused, so that a typo does not pass
    /// silently.
    pub fn load_with_flags(
        file: Option<PathBuf>,
        vars: impl IntoIterator<Item = (String, String)>,
        flags: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let file = file.or_else(|| {
            let config = vars.iter().find(|(name, _)| name == env::CONFIG);
            config.map(|(_, path)| PathBuf::from(path))
        });
        let file = match file {
            Some(path) => Some((read_file(&path)?, path)),
            None => None,
        };
        Config::fold(file, vars, flags)
    }

    /// [`Config::load_with_flags`] on a file's text already read (`path` only names it in
    /// errors): the same fold, without the file system. `RINGHUB_CONFIG` among `vars` is
    /// ignored here. The fuzz target `config` enters here, then calls [`Config::validate`]
    /// as `main` does.
    pub fn from_text(
        path: &Path,
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
        flags: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let table = parse_file(path, text)?;
        Config::fold(Some((table, path.to_path_buf())), vars, flags)
    }

    /// Folds the file's table, then the variables (sorted, so the result does not depend on
    /// the environment's order), then the flags, and deserializes the result.
    fn fold(
        file: Option<(toml::Table, PathBuf)>,
        vars: impl IntoIterator<Item = (String, String)>,
        flags: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut vars: Vec<(String, String)> = vars.into_iter().collect();
        vars.sort();
        let mut table = toml::Table::new();
        let mut origins = HashMap::new();
        if let Some((file, path)) = file {
            table = file;
            for key in table.keys() {
                origins.insert(key.clone(), Origin::File(path.clone()));
            }
        }
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("RINGHUB_") else {
                continue;
            };
            if env::NOT_SETTINGS.contains(&name.as_str()) {
                continue;
            }
            let key = key.to_ascii_lowercase();
            table.insert(key.clone(), toml::Value::String(value));
            origins.insert(key, Origin::Var(name));
        }
        for (key, value) in flags {
            table.insert(key.clone(), toml::Value::String(value));
            origins.insert(key, Origin::Flag);
        }
        Config::deserialize(lenient::Value(toml::Value::Table(table)))
            .map_err(|e| explain(e, &origins))
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file(path, &text)
}

fn parse_file(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.message().replace('\n', " "),
    })
}

/// The error, naming the file, variable or flag the value at fault came from.
fn explain(e: lenient::Error, origins: &HashMap<String, Origin>) -> ConfigError {
    let message = match e.unknown_key {
        true => "unknown setting".to_string(),
        false => e.message.clone(),
    };
    match e.top_key().and_then(|key| origins.get(key)) {
        Some(Origin::File(path)) => ConfigError::Parse {
            path: path.clone(),
            message: format!("{}: {message}", e.dotted_path()),
        },
        Some(Origin::Var(name)) if e.unknown_key => value_err(name, message),
        Some(Origin::Var(name)) => value_err(&format!("{} ({name})", e.dotted_path()), message),
        Some(Origin::Flag) => value_err(&format!("{} (command line)", e.dotted_path()), message),
        None => value_err("the configuration", e),
    }
}
