//! Webhook settings: the endpoints (`[[webhooks]]`, file only, like `[namespaces]`) and how
//! events are delivered to them (flat `webhook_*` keys, settable from the environment too).

use std::time::Duration;

use serde::Deserialize;

use super::{value_err, Config, ConfigError};

/// The kinds of event an endpoint may receive (`events = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// `session.started`, `session.ended`.
    Session,
    /// `presence.join`, `presence.leave` (namespaces with `join_leave`).
    Presence,
    /// `publication` (namespaces with `webhook = true`).
    Publication,
    /// `rpc.breaker`: an rpc backend's circuit breaker changed state.
    Breaker,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Session,
        EventKind::Presence,
        EventKind::Publication,
        EventKind::Breaker,
    ];

    /// A bit of a mask of kinds.
    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// One `[[webhooks]]` endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where events are POSTed (`http://` or `https://`, verified against the system's roots).
    pub url: String,
    /// The kinds it receives; omitted: every kind.
    #[serde(default = "every_kind")]
    pub events: Vec<EventKind>,
    /// Signs every delivery (`X-Ringhub-Signature`), as `rpc_secret` signs calls.
    #[serde(default)]
    pub secret: Option<String>,
}

fn every_kind() -> Vec<EventKind> {
    EventKind::ALL.to_vec()
}

/// How events are delivered; the same for every endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub queue: usize,
    pub max_in_flight: usize,
    pub dead_maxlen: usize,
}

impl Webhook {
    /// The mask of the kinds it receives.
    pub fn mask(&self) -> u8 {
        self.events.iter().fold(0, |m, k| m | k.bit())
    }
}

impl Config {
    pub fn webhook_delivery(&self) -> Delivery {
        Delivery {
            timeout: self.webhook_timeout,
            attempts: self.webhook_attempts,
            backoff: self.webhook_backoff,
            backoff_max: self.webhook_backoff_max,
            queue: self.webhook_queue,
            max_in_flight: self.webhook_max_in_flight,
            dead_maxlen: self.webhook_dead_maxlen,
        }
    }

    pub(super) fn validate_webhooks(&self) -> Result<(), ConfigError> {
        for hook in &self.webhooks {
            let url: hyper::Uri = hook
                .url
                .parse()
                .map_err(|e| value_err("webhooks.url", format!("{:?}: {e}", hook.url)))?;
            if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
                return Err(value_err(
                    "webhooks.url",
                    format!("{:?}: expected an http:// or https:// URL", hook.url),
                ));
            }
            if hook.events.is_empty() {
                return Err(value_err(
                    "webhooks.events",
                    format!("{:?}: names no event kind", hook.url),
                ));
            }
            if hook.secret.as_deref() == Some("") {
                return Err(value_err("webhooks.secret", "must not be empty when set"));
            }
        }
        let positive = [
            ("webhook_timeout", self.webhook_timeout.is_zero()),
            ("webhook_attempts", self.webhook_attempts == 0),
            ("webhook_queue", self.webhook_queue == 0),
            ("webhook_max_in_flight", self.webhook_max_in_flight == 0),
        ];
        for (key, zero) in positive {
            if zero {
                return Err(value_err(key, "must be greater than zero"));
            }
        }
        if self.webhook_backoff_max < self.webhook_backoff {
            return Err(value_err(
                "webhook_backoff_max",
                "must be at least webhook_backoff",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn endpoints_and_delivery_keys() {
        let c = parse(
            "webhook_attempts = 3\nwebhook_backoff = \"50ms\"\n\
             [[webhooks]]\nurl = \"http://game:7000/hooks\"\nevents = [\"session\", \"breaker\"]\nsecret = \"s\"\n\
             [[webhooks]]\nurl = \"https://audit.example/in\"\n",
        )
        .unwrap();
        assert_eq!(c.webhooks.len(), 2);
        let first = &c.webhooks[0];
        assert_eq!(first.events, [EventKind::Session, EventKind::Breaker]);
        assert_eq!(
            first.mask(),
            EventKind::Session.bit() | EventKind::Breaker.bit()
        );
        assert_eq!(first.secret.as_deref(), Some("s"));
        assert_eq!(
            c.webhooks[1].events,
            EventKind::ALL,
            "every kind by default"
        );
        let d = c.webhook_delivery();
        assert_eq!(d.attempts, 3);
        assert_eq!(d.backoff, Duration::from_millis(50));
        assert_eq!(d.backoff_max, Duration::from_secs(30));
    }

    #[test]
    fn bad_endpoints_are_refused() {
        let hook = |body: &str| parse(&format!("[[webhooks]]\n{body}\n"));
        assert!(hook("url = \"ftp://x/\"")
            .unwrap_err()
            .contains("webhooks.url"));
        assert!(hook("url = \"not a url\"").is_err());
        assert!(hook("url = \"http://x/\"\nevents = [\"sessions\"]").is_err());
        let empty = hook("url = \"http://x/\"\nevents = []").unwrap_err();
        assert!(empty.contains("webhooks.events"), "{empty}");
        assert!(hook("url = \"http://x/\"\nsecret = \"\"").is_err());
        assert!(
            hook("url = \"http://x/\"\nretries = 3").is_err(),
            "unknown key"
        );
        let slow = parse("webhook_backoff = \"1m\"\nwebhook_backoff_max = \"1s\"").unwrap_err();
        assert!(slow.contains("webhook_backoff_max"), "{slow}");
        assert!(parse("webhook_attempts = 0").is_err());
    }
}
