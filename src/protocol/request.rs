//! Client requests of `docs/protocol.md` §2, decoded without copying `data`: it stays the
//! raw JSON the client sent, relayed byte for byte.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::Since;

/// A client request. `data` stays raw JSON: it is relayed byte for byte.
#[derive(Debug, Deserialize)]
pub struct Request<'a> {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default, borrow)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub token: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub user: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub status: Option<Cow<'a, str>>,
    /// `event`: the event's name.
    #[serde(default, borrow)]
    pub event: Option<Cow<'a, str>>,
    /// `rpc`: the method called.
    #[serde(default, borrow)]
    pub method: Option<Cow<'a, str>>,
    /// An addition: the client's correlation id, carried into the ingress entry and logs.
    #[serde(default, borrow)]
    pub correlation_id: Option<Cow<'a, str>>,
    /// `subscribe`: where the client's copy of the channel ends; `history`: `{"offset":N}`
    /// or a bare offset.
    #[serde(default)]
    pub since: Option<Since>,
    /// `history`: most publications to return (default 100).
    #[serde(default)]
    pub limit: Option<u64>,
    /// An addition on `rpc` and `publish`: the client's W3C `traceparent`, kept as the frame
    /// carries it (not copied, never an error); read (`TraceParent::from_frame` in
    /// telemetry) only when traces are on, and ignored when it is not a valid one.
    #[serde(default, borrow)]
    pub traceparent: Option<TraceText<'a>>,
    /// An addition: `subscribe` with `"delta":"fossil"` takes the channel's publications
    /// as Fossil deltas where its namespace allows (`protocol::delta`).
    #[serde(default, borrow)]
    pub delta: Option<Cow<'a, str>>,
}

/// A request's `traceparent` as its encoding carries it: a JSON frame's raw value (any
/// JSON: only a string can be valid), a protobuf frame's string.
#[derive(Debug, Clone, Copy)]
pub enum TraceText<'a> {
    Json(&'a RawValue),
    Text(&'a str),
}

impl<'de: 'a, 'a> Deserialize<'de> for TraceText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TraceText<'a>, D::Error> {
        <&'a RawValue>::deserialize(d).map(TraceText::Json)
    }
}

/// Declares [`Kind`] with its wire names, once: the enum and `parse`.
macro_rules! request_kinds {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A request's `type` (§2), read once when the request is decoded.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Kind {
            $($variant,)*
            /// Any other string: answered `bad_request` ("unknown type").
            Unknown,
        }

        impl Kind {
            pub fn parse(name: &str) -> Kind {
                match name {
                    $($name => Kind::$variant,)*
                    _ => Kind::Unknown,
                }
            }
        }
    };
}

request_kinds! {
    Auth => "auth",
    Subscribe => "subscribe",
    Unsubscribe => "unsubscribe",
    Publish => "publish",
    Send => "send",
    Presence => "presence",
    History => "history",
    Status => "status",
    Refresh => "refresh",
    Rpc => "rpc",
    Event => "event",
    Ping => "ping",
}

/// `type` must be a string; an unknown one is `Kind::Unknown`, anything else an error.
impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let name = <Cow<'de, str>>::deserialize(d)?;
        Ok(Kind::parse(&name))
    }
}

#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<u64>,
}

/// Decodes a request; on failure returns the request id (when it can be read) and why.
pub fn decode(text: &str) -> Result<Request<'_>, (Option<u64>, String)> {
    serde_json::from_str(text).map_err(|e| {
        let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|r| r.id);
        let why = if e.is_syntax() || e.is_eof() {
            "malformed JSON".to_string()
        } else {
            format!("invalid request: {e}")
        };
        (id, why)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_requests_keep_their_id() {
        assert_eq!(decode("{nope").unwrap_err().0, None);
        let (id, why) = decode(r#"{"id":9,"type":5}"#).unwrap_err();
        assert_eq!(id, Some(9));
        assert!(why.starts_with("invalid request"));
        assert!(decode(r#"{"id":-1,"type":"ping"}"#).is_err());
    }

    #[test]
    fn request_kinds_are_read_once() {
        assert_eq!(decode(r#"{"type":"publish"}"#).unwrap().kind, Kind::Publish);
        assert_eq!(decode(r#"{"type":"dance"}"#).unwrap().kind, Kind::Unknown);
        assert_eq!(
            decode(r#"{"type":"pu\u0062lish"}"#).unwrap().kind,
            Kind::Publish
        );
        assert!(decode(r#"{"id":1}"#).is_err(), "type is required");
    }
}
