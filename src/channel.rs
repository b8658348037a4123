//! Channel names, namespaces and permission patterns (`docs/protocol.md` §3).

use crate::auth::Identity;
use crate::config::Config;

/// Longest channel name, in bytes.
pub const MAX_NAME: usize = 255;

/// 1..=255 bytes of `A-Z a-z 0-9 _ - : . @ / = #`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-:.@/=#".contains(&b))
}

/// The part before the first `:`, or `default`.
pub fn namespace_of(channel: &str) -> &str {
    match channel.split_once(':') {
        Some((ns, _)) => ns,
        None => "default",
    }
}

/// An exact name, or a prefix ending in `*`.
pub fn pattern_matches(pattern: &str, channel: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => channel.starts_with(prefix),
        None => pattern == channel,
    }
}

fn any_matches<'a>(mut patterns: impl Iterator<Item = &'a str>, channel: &str) -> bool {
    patterns.any(|p| pattern_matches(p, channel))
}

/// Why a client may not act on a channel; becomes an error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The name breaks §3's syntax (`bad_request`).
    BadName,
    /// Not permitted (`forbidden`).
    Forbidden,
}

impl Denied {
    pub fn message(self) -> &'static str {
        match self {
            Denied::BadName => "invalid channel name",
            Denied::Forbidden => "not permitted on this channel",
        }
    }
}

/// May this identity subscribe? Personal channels `#<user>` belong to their user alone;
/// otherwise a `channels` claim pattern or a public namespace is needed.
pub fn may_subscribe(config: &Config, who: &Identity, channel: &str) -> Result<(), Denied> {
    if !valid_name(channel) {
        return Err(Denied::BadName);
    }
    if let Some(user) = channel.strip_prefix('#') {
        return if user == who.user() {
            Ok(())
        } else {
            Err(Denied::Forbidden)
        };
    }
    if config.namespace(channel).public || any_matches(who.channels(), channel) {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

/// May this identity publish? The namespace must allow client publishes, and the user needs
/// a `publish` claim pattern, or the namespace is public. Personal channels are read-only
/// for clients (backends publish to them).
pub fn may_publish(config: &Config, who: &Identity, channel: &str) -> Result<(), Denied> {
    if !valid_name(channel) {
        return Err(Denied::BadName);
    }
    if channel.starts_with('#') {
        return Err(Denied::Forbidden);
    }
    let ns = config.namespace(channel);
    if ns.client_publish && (ns.public || any_matches(who.publish(), channel)) {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(channels: &[&str], publish: &[&str]) -> Identity {
        crate::auth::Claims {
            user: "u1".into(),
            channels: channels.iter().map(|s| s.to_string()).collect(),
            publish: publish.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn names() {
        assert!(valid_name("table:42"));
        assert!(valid_name("a.b/c=d@e#f-g_h"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name("ünïcode"));
        assert!(valid_name(&"x".repeat(255)));
        assert!(!valid_name(&"x".repeat(256)));
        assert_eq!(namespace_of("table:42:x"), "table");
        assert_eq!(namespace_of("lobby"), "default");
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("table:*", "table:42"));
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("lobby", "lobby"));
        assert!(!pattern_matches("lobby", "lobby2"));
        assert!(!pattern_matches("table:*", "tables"));
    }

    #[test]
    fn permissions() {
        let mut config = Config::default();
        let chat = crate::config::Namespace {
            public: true,
            client_publish: true,
            ..Default::default()
        };
        config.namespaces.insert("chat".into(), chat);
        let table = crate::config::Namespace {
            client_publish: true,
            ..Default::default()
        };
        config.namespaces.insert("table".into(), table);
        let w = who(&["table:1"], &["table:*"]);
        assert_eq!(may_subscribe(&config, &w, "chat:x"), Ok(()));
        assert_eq!(may_subscribe(&config, &w, "table:1"), Ok(()));
        assert_eq!(
            may_subscribe(&config, &w, "table:2"),
            Err(Denied::Forbidden)
        );
        assert_eq!(may_subscribe(&config, &w, "#u1"), Ok(()));
        assert_eq!(may_subscribe(&config, &w, "#u2"), Err(Denied::Forbidden));
        assert_eq!(may_subscribe(&config, &w, "bad name"), Err(Denied::BadName));
        assert_eq!(may_publish(&config, &w, "table:2"), Ok(()));
        assert_eq!(may_publish(&config, &w, "chat:x"), Ok(()));
        assert_eq!(may_publish(&config, &w, "lobby"), Err(Denied::Forbidden));
        assert_eq!(may_publish(&config, &w, "#u1"), Err(Denied::Forbidden));
    }
}
