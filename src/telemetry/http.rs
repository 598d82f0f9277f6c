//! The exporters' HTTP client: hyper on a small runtime of its own, so that it works from
//! any thread (the SDK's metric reader calls it from a plain thread) and needs no reqwest
//! and no OpenSSL. `https://` collectors (vendors' endpoints) through rustls with the Mozilla
//! roots, as `connect` does. Every request is bounded by the export timeout, response bodies
//! by size.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// A collector answers with a small (often empty) body; anything bigger is not an answer.
const MAX_RESPONSE: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct HyperExport {
    handle: tokio::runtime::Handle,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HyperExport {
    pub fn new(handle: tokio::runtime::Handle, timeout: Duration) -> Result<HyperExport, String> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let tls = crate::connect::tls::client_config(&Default::default())?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(HyperExport {
            handle,
            client,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for HyperExport {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        // Spawned on our runtime, awaited from whichever executor the SDK uses.
        let task = self.handle.spawn(async move {
            tokio::time::timeout(timeout, async move {
                let response = client.request(request).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_RESPONSE)
                    .collect()
                    .await
                    .map_err(|e| -> HttpError { e })?
                    .to_bytes();
                Ok::<_, HttpError>(Response::from_parts(parts, body))
            })
            .await
            .map_err(|_| -> HttpError { format!("no answer within {timeout:?}").into() })?
        });
        task.await.map_err(|e| -> HttpError { Box::new(e) })?
    }
}
