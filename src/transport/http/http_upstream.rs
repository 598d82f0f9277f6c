//! An HTTP upstream (`url = "http://…/mcp"`): the hyper client, and which request headers it
//! gets. Only MCP's own headers are passed on — never `Authorization`, cookies or our `X-MCP-*`
//! signature headers: the client's credentials are for the proxy, not for the server behind it.
//! The upstream's own credentials come from config (`[[servers]] headers`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::status::{JSON, SESSION_HEADER};
use crate::admin::Metrics;

/// Request headers an upstream may see, besides `Mcp-Param-*`.
const PASSED: &[&str] = &[
    "accept",
    "content-type",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
    "traceparent",
    "tracestate",
];

pub struct HttpUpstream {
    url: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Upstream latency for the admin port's `/metrics`.
    metrics: Option<Arc<Metrics>>,
    /// `[[servers]] headers`: the upstream's own credentials, added to every request.
    extra: Vec<(HeaderName, HeaderValue)>,
}

/// The upstream side of one proxied session: the upstream it talks to, and the upstream's own
/// session id, kept here and never shown to the client.
pub struct HttpSession {
    pub upstream: Arc<HttpUpstream>,
    upstream_id: Mutex<Option<String>>,
    /// The protocol version header of the session's requests, for the proxy's own POSTs.
    pub version: Mutex<Option<HeaderValue>>,
}

impl HttpSession {
    pub fn new(upstream: Arc<HttpUpstream>) -> HttpSession {
        HttpSession {
            upstream,
            upstream_id: Mutex::default(),
            version: Mutex::default(),
        }
    }

    pub fn upstream_id(&self) -> Option<String> {
        self.upstream_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_upstream_id(&self, id: Option<String>) {
        *self.upstream_id.lock().unwrap_or_else(|p| p.into_inner()) = id;
    }
}

impl HttpUpstream {
    pub fn new(url: &str) -> Result<HttpUpstream, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(format!(
                "url {url:?}: only http:// upstreams are supported (terminate TLS in front of the upstream, e.g. a mesh sidecar)"
            ));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpUpstream {
            url: uri,
            client,
            metrics: None,
            extra: Vec::new(),
        })
    }

    /// Record how long each request takes to answer (time to the response head).
    pub fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Add these headers to every request (configured credentials; they replace any the
    /// client's request would have passed).
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Self, String> {
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("{k}: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("{k}: {e}"))?;
            self.extra.push((name, value));
        }
        Ok(self)
    }

    /// Whether the upstream accepts a TCP connection within `timeout` (`/readyz`).
    pub async fn reachable(&self, timeout: Duration) -> bool {
        let Some(host) = self.url.host() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = self.url.port_u16().unwrap_or(80);
        let connect = tokio::net::TcpStream::connect((host, port));
        matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_)))
    }

    /// Send one request. `from` is the client's request headers (filtered here), `session` the
    /// upstream's session id.
    pub async fn send(
        &self,
        method: Method,
        from: &HeaderMap,
        session: Option<&str>,
        body: Bytes,
    ) -> Result<Response<Incoming>, String> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method.clone();
        *req.uri_mut() = self.url.clone();
        let headers = req.headers_mut();
        for (name, value) in from {
            let n = name.as_str();
            if PASSED.contains(&n) || n.starts_with("mcp-param-") {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.extra {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(id) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
            headers.insert(HeaderName::from_static(SESSION_HEADER), id);
        }
        if method == Method::POST {
            headers
                .entry(CONTENT_TYPE)
                .or_insert(HeaderValue::from_static(JSON));
            headers.entry(ACCEPT).or_insert(HeaderValue::from_static(
                "application/json, text/event-stream",
            ));
        }
        let started = Instant::now();
        let answered = self.client.request(req).await;
        if let (Some(m), Ok(_)) = (&self.metrics, &answered) {
            m.observe_upstream(started.elapsed());
        }
        answered.map_err(|e| format!("upstream {}: {e}", self.url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls() {
        assert!(HttpUpstream::new("http://127.0.0.1:3001/mcp").is_ok());
        assert!(HttpUpstream::new("https://example.com/mcp").is_err());
        assert!(HttpUpstream::new("not a url").is_err());
    }
}
