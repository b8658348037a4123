//! The admin port's endpoints, parsed once from a request's method and path; the router, the
//! handlers and the `ringhub_api_requests` metric all go by the [`Endpoint`].

use hyper::Method;

use crate::config::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Health,
    Ready,
    Metrics,
    Publish,
    Broadcast,
    Send,
    BroadcastAll,
    Disconnect,
    Revoke,
    Subscribe,
    Unsubscribe,
    Info,
    /// `/api/presence/{channel}`
    Presence,
    /// `/api/history/{channel}`
    History,
    /// `/api/mute`: POST sets a mute, DELETE lifts one, GET lists them.
    Mute,
    Unmute,
    Mutes,
    /// `/api/openapi.json`: this port's OpenAPI document (`src/control/openapi.json`).
    OpenApi,
}

/// A request that names no endpoint, or names one with the wrong method.
#[derive(Debug, PartialEq, Eq)]
pub enum Misrouted {
    Unknown,
    Method(Endpoint),
}

impl Endpoint {
    /// Every endpoint (`openapi.rs` checks the document against it).
    #[cfg(test)]
    pub const ALL: [Endpoint; 18] = {
        use Endpoint::*;
        [
            Health,
            Ready,
            Metrics,
            Publish,
            Broadcast,
            Send,
            BroadcastAll,
            Disconnect,
            Revoke,
            Subscribe,
            Unsubscribe,
            Info,
            Presence,
            History,
            Mute,
            Unmute,
            Mutes,
            OpenApi,
        ]
    };

    /// The endpoint a request is for.
    pub fn parse(method: &Method, path: &str) -> Result<Endpoint, Misrouted> {
        if path == "/api/mute" {
            return match *method {
                Method::POST => Ok(Endpoint::Mute),
                Method::DELETE => Ok(Endpoint::Unmute),
                Method::GET => Ok(Endpoint::Mutes),
                _ => Err(Misrouted::Method(Endpoint::Mute)),
            };
        }
        let endpoint = Endpoint::of(path).ok_or(Misrouted::Unknown)?;
        if *method == endpoint.method() {
            Ok(endpoint)
        } else {
            Err(Misrouted::Method(endpoint))
        }
    }

    fn of(path: &str) -> Option<Endpoint> {
        use Endpoint::*;
        Some(match path {
            "/health" => Health,
            "/ready" => Ready,
            "/metrics" => Metrics,
            "/api/publish" => Publish,
            "/api/broadcast" => Broadcast,
            "/api/send" => Send,
            "/api/broadcast_all" => BroadcastAll,
            "/api/disconnect" => Disconnect,
            "/api/revoke" => Revoke,
            "/api/subscribe" => Subscribe,
            "/api/unsubscribe" => Unsubscribe,
            "/api/info" => Info,
            "/api/openapi.json" => OpenApi,
            p if p.starts_with("/api/presence/") => Presence,
            p if p.starts_with("/api/history/") => History,
            _ => return None,
        })
    }

    /// The one method it takes.
    pub fn method(self) -> Method {
        match self {
            Endpoint::Health
            | Endpoint::Ready
            | Endpoint::Metrics
            | Endpoint::Info
            | Endpoint::Presence
            | Endpoint::History
            | Endpoint::Mutes
            | Endpoint::OpenApi => Method::GET,
            Endpoint::Unmute => Method::DELETE,
            _ => Method::POST,
        }
    }

    /// The `Allow` header of a 405 on its path: every method the path takes.
    pub fn allow(self) -> &'static str {
        match self {
            Endpoint::Mute | Endpoint::Unmute | Endpoint::Mutes => "GET, POST, DELETE",
            e if e.method() == Method::GET => "GET",
            e if e.method() == Method::DELETE => "DELETE",
            _ => "POST",
        }
    }

    /// A server API endpoint: it needs a key, is logged, and is always counted.
    pub fn is_api(self) -> bool {
        !matches!(self, Endpoint::Health | Endpoint::Ready | Endpoint::Metrics)
    }

    /// The scope a key needs for it (None: no key needed). This is the one table of it;
    /// docs/api.md#scopes shows the same.
    pub fn scope(self) -> Option<Scope> {
        use Endpoint::*;
        Some(match self {
            Health | Ready | Metrics => return None,
            Publish | Broadcast | Send | BroadcastAll => Scope::Publish,
            Presence => Scope::Presence,
            Revoke | Disconnect | Mute | Unmute => Scope::Revoke,
            Subscribe | Unsubscribe => Scope::Subscriptions,
            History | Info | Mutes | OpenApi => Scope::Read,
        })
    }

    /// Its `endpoint` label in `ringhub_api_requests`.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::Ready => "ready",
            Endpoint::Metrics => "metrics",
            Endpoint::Publish => "api_publish",
            Endpoint::Broadcast => "api_broadcast",
            Endpoint::Send => "api_send",
            Endpoint::BroadcastAll => "api_broadcast_all",
            Endpoint::Disconnect => "api_disconnect",
            Endpoint::Revoke => "api_revoke",
            Endpoint::Subscribe => "api_subscribe",
            Endpoint::Unsubscribe => "api_unsubscribe",
            Endpoint::Info => "api_info",
            Endpoint::Presence => "api_presence",
            Endpoint::History => "api_history",
            Endpoint::Mute => "api_mute",
            Endpoint::Unmute => "api_unmute",
            Endpoint::Mutes => "api_mutes",
            Endpoint::OpenApi => "api_openapi",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_methods() {
        assert_eq!(Endpoint::parse(&Method::GET, "/ready"), Ok(Endpoint::Ready));
        assert_eq!(
            Endpoint::parse(&Method::GET, "/api/history/chat:1"),
            Ok(Endpoint::History)
        );
        assert_eq!(
            Endpoint::parse(&Method::GET, "/api/publish"),
            Err(Misrouted::Method(Endpoint::Publish))
        );
        assert_eq!(
            Endpoint::parse(&Method::GET, "/api/nothing"),
            Err(Misrouted::Unknown)
        );
        assert_eq!(
            Endpoint::parse(&Method::DELETE, "/api/mute"),
            Ok(Endpoint::Unmute)
        );
        assert_eq!(
            Endpoint::parse(&Method::GET, "/api/mute"),
            Ok(Endpoint::Mutes)
        );
        assert!(Endpoint::parse(&Method::PUT, "/api/mute").is_err());
        assert_eq!(Endpoint::Mute.allow(), "GET, POST, DELETE");
        assert_eq!(Endpoint::Info.allow(), "GET");
        assert!(!Endpoint::Metrics.is_api());
        assert!(Endpoint::Presence.is_api());
        assert_eq!(Endpoint::Unsubscribe.label(), "api_unsubscribe");
        for e in Endpoint::ALL {
            assert_eq!(e.scope().is_some(), e.is_api(), "{e:?}");
        }
        assert_eq!(Endpoint::Mutes.scope(), Some(Scope::Read));
        assert_eq!(Endpoint::Mute.scope(), Some(Scope::Revoke));
    }
}
