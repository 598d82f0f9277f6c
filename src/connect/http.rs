//! The upstream side of `connect`: streamable HTTP requests to one URL, each signed with the
//! local key (SPEC §4 header scheme over the exact body bytes), carrying the session id and
//! protocol version the server handed out, and the modern era's `Mcp-Method` / `Mcp-Name`.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::sig::{http_scheme, new_nonce, SigningKey};

pub const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const LAST_EVENT_HEADER: &str = "last-event-id";
const WELL_KNOWN: &str = "/.well-known/mcp/capabilities";
/// The legacy POST must accept both answers a server may choose (SPEC, streamable HTTP).
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// What the modern era needs in headers, read from the message body by the caller.
#[derive(Debug, Clone, Default)]
pub struct Route {
    pub method: Option<String>,
    pub name: Option<String>,
}

pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    audience: String,
    key: SigningKey,
    session: Mutex<Option<HeaderValue>>,
    version: Mutex<Option<HeaderValue>>,
    /// `[[servers]] headers`: the remote server's own credentials (e.g. `Authorization`), sent
    /// on every request. Never the protocol's or the signature's headers: those are ours.
    extra: Vec<(HeaderName, HeaderValue)>,
}

/// Headers `connect` sets itself; a configured header of the same name is not sent.
fn reserved(name: &HeaderName) -> bool {
    let n = name.as_str();
    n.starts_with("x-mcp-")
        || n.starts_with("mcp-")
        || matches!(
            n,
            "content-type" | "accept" | "content-length" | "host" | LAST_EVENT_HEADER
        )
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Upstream {
    /// `url` is `http://` or `https://` (TLS per `tls`: Mozilla roots, an extra CA file, an
    /// optional client certificate).
    pub fn new(
        url: &str,
        audience: &str,
        key: SigningKey,
        tls: &super::tls::TlsFiles,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<Upstream, String> {
        let mut extra = Vec::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("servers.headers.{k}: {e}"))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| format!("servers.headers.{k}: {e}"))?;
            if reserved(&name) {
                tracing::warn!(
                    "servers.headers.{k}: set by connect itself; the configured value is not sent"
                );
                continue;
            }
            extra.push((name, value));
        }
        let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(format!("URL {url:?} must be http(s)://HOST[:PORT]/PATH"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(super::tls::client_config(tls)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Upstream {
            client,
            url: uri,
            audience: audience.to_owned(),
            key,
            session: Mutex::new(None),
            version: Mutex::new(None),
            extra,
        })
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn has_session(&self) -> bool {
        Self::lock(&self.session).is_some()
    }

    /// Remembers the session id the server assigned (on the `initialize` answer).
    pub fn learn_session(&self, response: &Response<Incoming>) {
        if let Some(v) = response.headers().get(SESSION_HEADER) {
            *Self::lock(&self.session) = Some(v.clone());
        }
    }

    /// The negotiated protocol version, sent on every later request (`MCP-Protocol-Version`).
    pub fn set_version(&self, version: &str) {
        if let Ok(v) = HeaderValue::from_str(version) {
            *Self::lock(&self.version) = Some(v);
        }
    }

    /// A request with the session headers and the signature over `body`.
    fn request(
        &self,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, String> {
        let signed = http_scheme::sign(&self.key, &self.audience, &body, now_unix(), &new_nonce());
        let mut req = Request::builder().method(method).uri(uri);
        for (name, value) in &self.extra {
            req = req.header(name, value);
        }
        for (name, value) in signed.pairs() {
            req = req.header(name, value);
        }
        if let Some(s) = Self::lock(&self.session).clone() {
            req = req.header(SESSION_HEADER, s);
        }
        if let Some(v) = Self::lock(&self.version).clone() {
            req = req.header(PROTOCOL_HEADER, v);
        }
        req.body(Full::new(body)).map_err(|e| e.to_string())
    }

    /// POSTs one message (the client's exact bytes).
    pub async fn post(
        &self,
        body: Bytes,
        route: Option<&Route>,
    ) -> Result<Response<Incoming>, String> {
        let mut req = self.request(Method::POST, self.url.clone(), body)?;
        let headers = req.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_BOTH));
        if let Some(route) = route {
            for (name, value) in [(METHOD_HEADER, &route.method), (NAME_HEADER, &route.name)] {
                // from_bytes keeps non-ASCII names (obs-text); control characters cannot be sent.
                if let Some(v) = value
                    .as_deref()
                    .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
                {
                    headers.insert(HeaderName::from_static(name), v);
                }
            }
        }
        self.client
            .request(req)
            .await
            .map_err(|e| format!("{}: {}", self.url, error_chain(&e)))
    }

    /// Opens the GET stream for server-initiated messages (legacy sessions only).
    pub async fn open_stream(
        &self,
        last_event: Option<&str>,
    ) -> Result<Response<Incoming>, String> {
        let mut req = self.request(Method::GET, self.url.clone(), Bytes::new())?;
        let headers = req.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(v) = last_event.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(HeaderName::from_static(LAST_EVENT_HEADER), v);
        }
        self.client
            .request(req)
            .await
            .map_err(|e| format!("{}: {}", self.url, error_chain(&e)))
    }

    /// Ends the session on the server (DELETE), if there is one. Best effort, bounded in time.
    pub async fn close(&self) {
        if !self.has_session() {
            return;
        }
        let Ok(req) = self.request(Method::DELETE, self.url.clone(), Bytes::new()) else {
            return;
        };
        match tokio::time::timeout(Duration::from_secs(2), self.client.request(req)).await {
            Ok(Ok(resp)) => tracing::debug!("session closed: HTTP {}", resp.status()),
            Ok(Err(e)) => tracing::debug!("closing the session failed: {e}"),
            Err(_) => tracing::debug!("closing the session timed out"),
        }
    }

    /// `GET …/.well-known/mcp/capabilities` → `server.public_key`: where the server's identity
    /// key is published for the first contact (SPEC §4 "Server identity"). Asked next to the
    /// endpoint first (`/mcp/fs/.well-known/…`: a gateway serving several servers answers per
    /// route), then at the root (one server per host).
    pub async fn published_key(&self) -> Result<String, String> {
        let path = self.url.path().trim_end_matches('/');
        let mut tried = Vec::new();
        for candidate in [format!("{path}{WELL_KNOWN}"), WELL_KNOWN.to_owned()] {
            if tried.contains(&candidate) {
                continue;
            }
            match self.fetch_key(&candidate).await {
                Ok(key) => return Ok(key),
                Err(e) => tried.push(format!("{candidate}: {e}")),
            }
        }
        Err(tried.join("; "))
    }

    async fn fetch_key(&self, path: &str) -> Result<String, String> {
        let mut parts = self.url.clone().into_parts();
        parts.path_and_query =
            Some(hyper::http::uri::PathAndQuery::try_from(path).map_err(|e| e.to_string())?);
        let uri = Uri::from_parts(parts).map_err(|e| e.to_string())?;
        let mut req = self.request(Method::GET, uri, Bytes::new())?;
        req.headers_mut()
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| "capabilities request timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("capabilities answered HTTP {}", resp.status()));
        }
        let body = read_body(resp.into_body(), 1024 * 1024).await?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("capabilities: {e}"))?;
        doc.pointer("/server/public_key")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "capabilities document has no server.public_key".into())
    }
}

/// Reads a whole (non-streaming) body, refusing more than `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, String> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("reading the upstream body: {e}"))
}

/// An error with its causes ("client error (Connect): invalid peer certificate: UnknownIssuer"):
/// hyper's own text hides the reason a person can act on.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}
