//! How spans leave: the OTLP/HTTP exporter's client, on the hyper client the hub already
//! has. The SDK's batch processor runs on a thread of its own and drives each export with a
//! plain executor (`futures_executor::block_on`), where hyper finds no tokio reactor; so
//! this client owns a current-thread tokio runtime and runs each post on it, on that thread.
//! No shard and no control-thread task ever waits on an export.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// A collector's answer larger than this is not read (it is a status, at most a few bytes).
const MAX_ANSWER: usize = 64 * 1024;

pub struct Poster {
    /// `Some` until dropped: see `Drop`.
    runtime: Option<tokio::runtime::Runtime>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster").finish_non_exhaustive()
    }
}

impl Poster {
    /// `http://` or `https://` (the system's roots) collectors.
    pub fn new(timeout: Duration) -> std::io::Result<Poster> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let tls = match HttpsConnectorBuilder::new().with_native_roots() {
            Ok(native) => native,
            Err(e) => {
                tracing::warn!(error = %e, "traces: no system TLS roots; an https otlp_endpoint will fail");
                HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            }
        };
        let connector = tls.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Poster {
            runtime: Some(runtime),
            client,
            timeout,
        })
    }

    async fn post(
        client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, HttpError> {
        let (head, body) = request.into_parts();
        let response = client
            .request(hyper::Request::from_parts(head, Full::new(body)))
            .await?;
        let (head, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
        Ok(Response::from_parts(head, body))
    }
}

impl HttpClient for Poster {
    // `#[async_trait]`'s expansion, written out.
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            let runtime = self.runtime.as_ref().ok_or("the exporter is shut down")?;
            let post = Poster::post(self.client.clone(), request);
            // The batch thread's own runtime, not entered anywhere else: blocking here holds
            // up only that thread, which has nothing else to do meanwhile.
            match runtime.block_on(async { tokio::time::timeout(self.timeout, post).await }) {
                Ok(answer) => answer,
                Err(_) => Err("the collector did not answer in time".into()),
            }
        })
    }
}

impl Drop for Poster {
    /// A runtime dropped inside another runtime's context panics; shutting it down in the
    /// background never does, wherever the exporter ends.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
