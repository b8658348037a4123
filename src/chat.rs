//! Chat rules per namespace (docs/chat.md): what a client's publication may say. The rules
//! read the text of `data`: the string itself, or every string value inside it (object
//! keys are not text). They are checked on the publisher's shard before the publication
//! goes anywhere; a broken rule refuses that publication only.

use std::collections::{HashMap, HashSet};

use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::{Config, Namespace};

/// The rules of one namespace.
#[derive(Debug, Default)]
pub struct Rules {
    /// The most characters of text.
    max_length: Option<usize>,
    /// Refuse control characters (but tab and newline) and zero-width ones.
    reject_invisible: bool,
    /// Lower-case words that may not appear.
    blocked: HashSet<String>,
}

/// Why a publication was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Broken {
    TooLong { max: usize },
    Invisible { code_point: u32 },
    Blocked,
}

impl Broken {
    pub fn message(&self) -> String {
        match self {
            Broken::TooLong { max } => format!("the message is longer than {max} characters"),
            Broken::Invisible { code_point } => {
                format!(
                    "the message contains an invisible or control character (U+{code_point:04X})"
                )
            }
            Broken::Blocked => "the message contains a blocked word".into(),
        }
    }
}

/// Every namespace's rules, made once at start.
#[derive(Debug, Default)]
pub struct Book {
    namespaces: HashMap<String, Rules>,
}

impl Book {
    /// The rules of the configured namespaces that have any; a blocked-words file that
    /// cannot be read (validation checked it) leaves that list empty and says so.
    pub fn new(config: &Config) -> Book {
        let mut namespaces = HashMap::new();
        for (name, ns) in &config.namespaces {
            match Rules::of(ns) {
                Ok(Some(rules)) => {
                    namespaces.insert(name.clone(), rules);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(namespace = %name, error = %e, "chat rules: blocked words not loaded")
                }
            }
        }
        Book { namespaces }
    }

    /// The rules for `namespace` (`OTHER_NAMESPACES` covers names not configured).
    pub fn of(&self, namespace: &str) -> Option<&Rules> {
        self.namespaces
            .get(namespace)
            .or_else(|| self.namespaces.get(crate::config::OTHER_NAMESPACES))
    }
}

impl Rules {
    /// The namespace's rules, None when it has none; Err when its words file is unusable.
    pub fn of(ns: &Namespace) -> Result<Option<Rules>, String> {
        let blocked = match &ns.blocked_words_file {
            Some(path) => read_words(path)?,
            None => HashSet::new(),
        };
        let rules = Rules {
            max_length: ns.max_text_length.filter(|&n| n > 0),
            reject_invisible: ns.reject_invisible,
            blocked,
        };
        let any = rules.max_length.is_some() || rules.reject_invisible || !rules.blocked.is_empty();
        Ok(any.then_some(rules))
    }

    /// Checks the text of a publication's `data`.
    pub fn check(&self, data: &RawValue) -> Result<(), Broken> {
        let Ok(value) = serde_json::from_str::<Value>(data.get()) else {
            return Ok(()); // the frame parser already took it as JSON
        };
        let mut texts = Vec::new();
        strings(&value, &mut texts);
        if let Some(max) = self.max_length {
            let length: usize = texts.iter().map(|t| t.chars().count()).sum();
            if length > max {
                return Err(Broken::TooLong { max });
            }
        }
        if self.reject_invisible {
            if let Some(c) = texts.iter().flat_map(|t| t.chars()).find(|&c| invisible(c)) {
                return Err(Broken::Invisible {
                    code_point: c as u32,
                });
            }
        }
        if !self.blocked.is_empty() {
            let words = texts
                .iter()
                .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
                .filter(|w| !w.is_empty());
            for word in words {
                if self.blocked.contains(&word.to_lowercase()) {
                    return Err(Broken::Blocked);
                }
            }
        }
        Ok(())
    }
}

/// The words of a file: one per line, `#` starts a comment, compared in lower case.
pub fn read_words(path: &std::path::Path) -> Result<HashSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect())
}

fn strings<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Control characters other than tab and newline, and the zero-width and direction marks
/// that hide or disguise text.
fn invisible(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(max: Option<usize>, invisible: bool, words: &[&str]) -> Rules {
        Rules {
            max_length: max,
            reject_invisible: invisible,
            blocked: words.iter().map(|w| w.to_string()).collect(),
        }
    }

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.into()).unwrap()
    }

    #[test]
    fn length_counts_characters_of_every_string() {
        let r = rules(Some(5), false, &[]);
        assert_eq!(r.check(&raw(r#""héllo""#)), Ok(()));
        assert_eq!(
            r.check(&raw(r#""hello!""#)),
            Err(Broken::TooLong { max: 5 })
        );
        assert_eq!(
            r.check(&raw(r#"{"text":"abc","more":["de","f"]}"#)),
            Err(Broken::TooLong { max: 5 })
        );
        assert_eq!(r.check(&raw(r#"{"a_long_key_is_not_text":1}"#)), Ok(()));
    }

    #[test]
    fn control_and_zero_width_characters_are_refused_even_escaped() {
        let r = rules(None, true, &[]);
        assert_eq!(r.check(&raw(r#""two\nlines\tand a tab""#)), Ok(()));
        assert_eq!(
            r.check(&raw(r#""hid\u200bden""#)),
            Err(Broken::Invisible { code_point: 0x200B })
        );
        assert_eq!(
            r.check(&raw(r#"{"t":"bell\u0007"}"#)),
            Err(Broken::Invisible { code_point: 7 })
        );
    }

    #[test]
    fn blocked_words_match_whole_words_in_any_case() {
        let r = rules(None, false, &["darn"]);
        assert_eq!(r.check(&raw(r#""Well, DARN it""#)), Err(Broken::Blocked));
        assert_eq!(r.check(&raw(r#""darning socks""#)), Ok(()));
        assert_eq!(
            r.check(&raw(r#"{"m":["ok","darn!"]}"#)),
            Err(Broken::Blocked)
        );
    }
}
