//! `GET /api/openapi.json`: the admin port's OpenAPI 3.1 document, kept beside this file
//! (`openapi.json`) and compiled into the binary. The tests hold it to the router: every
//! [`Endpoint`] is described, and every described operation is served.

use bytes::Bytes;

use super::api::Answer;

/// The document, as written in the repository.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub fn answer() -> Answer {
    Answer {
        status: 200,
        body: Bytes::from_static(DOCUMENT.as_bytes()),
        content_type: "application/json",
        headers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use hyper::Method;

    use super::super::endpoint::Endpoint;
    use super::DOCUMENT;

    /// Every (method, path) the document describes, with `{param}` filled in.
    fn operations() -> Vec<(Method, String)> {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let path = path.replace("{channel}", "chat:lobby");
            assert!(
                !path.contains('{'),
                "a path parameter the test does not fill: {path}"
            );
            for method in item.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                ops.push((method, path.clone()));
            }
        }
        ops
    }

    #[test]
    fn every_endpoint_is_described_and_every_description_is_served() {
        // A new variant fails to compile here until it is added to `Endpoint::ALL`.
        for e in Endpoint::ALL {
            match e {
                Endpoint::Health | Endpoint::Ready | Endpoint::Metrics | Endpoint::Publish => {}
                Endpoint::Broadcast | Endpoint::Send | Endpoint::BroadcastAll => {}
                Endpoint::Disconnect | Endpoint::Revoke | Endpoint::Subscribe => {}
                Endpoint::Unsubscribe | Endpoint::Info | Endpoint::Presence => {}
                Endpoint::History | Endpoint::Mute | Endpoint::Unmute | Endpoint::Mutes => {}
                Endpoint::OpenApi => {}
            }
        }
        assert_eq!(
            Endpoint::ALL.iter().collect::<HashSet<_>>().len(),
            Endpoint::ALL.len()
        );
        let mut described = HashSet::new();
        for (method, path) in operations() {
            let e = Endpoint::parse(&method, &path)
                .unwrap_or_else(|e| panic!("{method} {path} is described but not served: {e:?}"));
            assert!(described.insert(e), "{e:?} is described twice");
        }
        for e in Endpoint::ALL {
            assert!(described.contains(&e), "{e:?} is served but not described");
        }
    }

    #[test]
    fn keys_are_asked_where_the_router_asks_them() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let e = Endpoint::parse(&m, &path.replace("{channel}", "x")).unwrap();
                let open = op["security"].as_array().is_some_and(|s| s.is_empty());
                assert_eq!(open, !e.is_api(), "{method} {path}: security");
                let has_401 = op["responses"].get("401").is_some();
                assert_eq!(has_401, e.is_api(), "{method} {path}: 401");
                let scope = op["x-ringhub-scope"].as_str();
                assert_eq!(
                    scope,
                    e.scope().map(|s| s.as_str()),
                    "{method} {path}: scope"
                );
                for status in ["403", "429"] {
                    let has = op["responses"].get(status).is_some();
                    assert_eq!(has, e.is_api(), "{method} {path}: {status}");
                }
            }
        }
    }
}
