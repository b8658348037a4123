//! The admin listener: HTTP/1.1 with keep-alive (hyper), on the control thread. `/health`,
//! `/ready` and `/metrics` are open; every `/api/*` request goes through, in order, the
//! client address's rate limit, `Authorization: Bearer <key>` (checked against the SHA-256
//! digests of the keys in force, `keys.rs`), the scope its endpoint needs
//! (`Endpoint::scope`), and the key name's rate limit (`throttle.rs`). One log line per API
//! request, with the key's name and its correlation id (taken from `X-Correlation-Id` when
//! the caller sends one, made up otherwise, and echoed in the response).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use hyper::{Method, Request, Response, StatusCode};

use super::api::{self, Answer};
use super::endpoint::{Endpoint, Misrouted};
use super::keys::{Caller, Keys};
use super::store::Store;
use super::throttle::{retry_after, Throttle};
use crate::metrics::{ApiLabels, KeyLabels, Registry};
use crate::shared::Shared;

/// Largest request body the API reads; larger ones get 413.
pub const MAX_BODY: usize = 1 << 20;
/// How much of a too-large body is read and discarded so that its sender gets the 413.
const DRAIN_LIMIT: u64 = 16 << 20;
/// Time a client has to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request body, once its head has arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Admin {
    pub shared: Arc<Shared>,
    keys: Arc<Keys>,
    throttle: Throttle,
    pub registry: Registry,
    pub store: Option<Store>,
}

impl Admin {
    pub fn new(shared: Arc<Shared>, keys: Arc<Keys>, store: Option<Store>) -> Admin {
        let mut registry = Registry::new(shared.clone());
        registry.register(
            "ringhub_api_key_reloads",
            "Reloads of the API keys (SIGHUP), by result: a failed one kept the old keys",
            keys.reloads.clone(),
        );
        Admin {
            registry,
            throttle: Throttle::new(&shared.config),
            shared,
            keys,
            store,
        }
    }
}

/// Accepts admin connections until the runtime is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    admin: Arc<Admin>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let admin = admin.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(handle(&admin, req, peer.ip()).await) }
            });
            let http = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .clone();
            match tls {
                None => {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = http.serve_connection(io, service).await;
                }
                // The handshake gets the time a request head gets.
                Some(tls) => match tokio::time::timeout(HEAD_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = http.serve_connection(io, service).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "admin TLS handshake failed"),
                    Err(_) => tracing::debug!("admin TLS handshake timed out"),
                },
            }
        });
    }
}

async fn handle(admin: &Admin, req: Request<Incoming>, peer: IpAddr) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let correlation = correlation_id(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut caller = None;
    let (endpoint, answer) = route(admin, req, peer, &mut caller, &correlation).await;
    let status = answer.status;
    let key = caller.as_ref().map_or("", |c| &*c.name);
    if caller.is_some() {
        let labels = KeyLabels {
            key: key.to_string(),
            status,
        };
        admin.registry.api_key_requests.get_or_create(&labels).inc();
    }
    let api = endpoint.is_some_and(Endpoint::is_api);
    if api || status >= 400 {
        admin
            .registry
            .api_requests
            .get_or_create(&ApiLabels {
                endpoint: endpoint.map_or("unknown", Endpoint::label).into(),
                status,
            })
            .inc();
    }
    if api {
        tracing::info!(%method, path = %path, status, key, %peer, duration_us = started.elapsed().as_micros() as u64,
            instance = %admin.shared.instance, correlation_id = %correlation, "api request");
    }
    answer.into_response(&correlation)
}

/// Finds the endpoint, checks the limits and the key, reads the body, and runs the
/// handler. Returns the endpoint (None: no such path) with the answer; `caller` is set
/// once the key is known.
async fn route(
    admin: &Admin,
    req: Request<Incoming>,
    peer: IpAddr,
    caller: &mut Option<Caller>,
    correlation: &str,
) -> (Option<Endpoint>, Answer) {
    let path = req.uri().path().to_string();
    let endpoint = match Endpoint::parse(req.method(), &path) {
        Ok(e) => e,
        Err(Misrouted::Unknown) => {
            return (None, Answer::error(404, "not_found", "no such endpoint"));
        }
        Err(Misrouted::Method(e)) => {
            let allowed = e.allow();
            let msg = format!("{path} takes {allowed}");
            let answer =
                Answer::error(405, "method_not_allowed", &msg).with_header("allow", allowed);
            return (Some(e), answer);
        }
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let mut body = Bytes::new();
    if let Some(scope) = endpoint.scope() {
        let admitted = admit(admin, &req, peer, scope, caller);
        let read = match endpoint.method() {
            Method::GET => Ok(Bytes::new()),
            // Read also when refused (up to the same limits), so that the connection can
            // be kept alive: hyper closes one whose request body was left unread.
            _ => read_body(req).await,
        };
        match (admitted, read) {
            (Err(refusal), _) | (Ok(()), Err(refusal)) => return (Some(endpoint), refusal),
            (Ok(()), Ok(b)) => body = b,
        }
    }
    let cause: Arc<str> = correlation.into();
    let answer = api::call(admin, endpoint, &path, &query, &body, cause).await;
    (Some(endpoint), answer)
}

/// The checks before a server API request runs, in order: the address's rate, the key,
/// its scope, its name's rate. `caller` is set once the key is known.
fn admit(
    admin: &Admin,
    req: &Request<Incoming>,
    peer: IpAddr,
    scope: crate::config::Scope,
    caller: &mut Option<Caller>,
) -> Result<(), Answer> {
    admin
        .throttle
        .ip(peer, Instant::now())
        .map_err(|wait| too_many("this address", wait))?;
    let key = caller.insert(check_key(admin, req)?);
    if !key.scopes.grants(scope) {
        let message = format!("the key {:?} lacks the scope {}", key.name, scope.as_str());
        let body =
            serde_json::json!({"error": "forbidden", "message": message, "scope": scope.as_str()});
        return Err(Answer::json(403, &body));
    }
    admin
        .throttle
        .key(&key.name, Instant::now())
        .map_err(|wait| too_many("this key", wait))
}

/// 429 with `Retry-After`.
fn too_many(who: &str, wait: Duration) -> Answer {
    let message = format!("too many server API requests from {who}");
    Answer::error(429, "rate_limited", &message)
        .with_header("retry-after", &retry_after(wait).to_string())
}

/// The caller of the key in `Authorization`, or the refusal.
fn check_key(admin: &Admin, req: &Request<Incoming>) -> Result<Caller, Answer> {
    if admin.keys.is_empty() {
        return Err(Answer::error(
            403,
            "forbidden",
            "the server API is disabled: no API keys are configured (RINGHUB_API_KEYS)",
        ));
    }
    let key = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match key {
        Some(k) => admin
            .keys
            .find(k)
            .ok_or_else(|| Answer::error(401, "unauthorized", "invalid API key")),
        None => Err(Answer::error(
            401,
            "unauthorized",
            "missing Authorization: Bearer <api key>",
        )),
    }
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
///
/// A larger one still gets read, and thrown away, up to [`DRAIN_LIMIT`]: a client that is
/// still sending when the server answers and closes gets a reset, and with it often loses
/// the 413 it was about to read. Past the limit (or when the client asked for `Expect:
/// 100-continue`, so it sends nothing until told) the 413 goes at once and the connection
/// closes.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Answer> {
    let too_large = || Answer::error(413, "too_large", "the body is larger than 1 MiB");
    let unreadable = || Answer::error(400, "bad_request", "the body could not be read");
    let headers = req.headers();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let waits_for_continue = headers
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if declared.is_some_and(|n| n > DRAIN_LIMIT || (n > MAX_BODY as u64 && waits_for_continue)) {
        return Err(too_large());
    }
    let mut body = req.into_body();
    let mut kept = BytesMut::new();
    let mut seen = 0u64;
    let read_all = async {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| unreadable())?.into_data() else {
                continue; // trailers
            };
            seen += data.len() as u64;
            if seen > DRAIN_LIMIT {
                return Err(too_large());
            }
            if seen <= MAX_BODY as u64 {
                kept.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    tokio::time::timeout(BODY_TIMEOUT, read_all)
        .await
        .map_err(|_| Answer::error(400, "timeout", "the body took too long to arrive"))??;
    if seen > MAX_BODY as u64 {
        return Err(too_large());
    }
    Ok(kept.freeze())
}

/// The caller's `X-Correlation-Id` when it is sane (1..=128 visible ASCII), else a new one.
fn correlation_id(req: &Request<Incoming>) -> String {
    req.headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()))
}

impl Answer {
    fn into_response(self, correlation: &str) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(self.body));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        if let Ok(v) = HeaderValue::from_str(correlation) {
            headers.insert("x-correlation-id", v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        resp
    }
}
