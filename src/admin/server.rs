//! The admin HTTP server: accept loop, the browser and token gates, and routing.
//!
//! Gates, in order, and why:
//! 1. `Origin` present and not the dashboard's own (`ui::same_origin`) → 403. Browsers send it
//!    on cross-site requests and on every POST, so another web page can never approve a call
//!    (corpus HTTP-07); the dashboard itself still needs the token to decide anything.
//! 2. Bound to loopback → `Host` must name loopback (DNS rebinding: a page whose name resolves to
//!    127.0.0.1 sends its own name as Host).
//! 3. `Authorization: Bearer TOKEN` for anything that decides (every non-GET: approvals, …),
//!    always, loopback included — a wrapped server runs as the same user on the same machine
//!    and must not approve its own calls. Reads need it too off loopback or when
//!    `admin.token_file` is configured; the probes never (they reveal nothing, and the kubelet
//!    calls them without credentials).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

use super::metrics::Metrics;
use super::{api, audit_stream, dashboard, prometheus, ui, Readiness};

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub type Body = BoxBody<Bytes, Infallible>;

/// What the handlers need; built once by `admin::spawn`.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    pub token: String,
    /// `admin.token_file` was configured: reads need the token as well.
    pub token_explicit: bool,
    pub loopback: bool,
    /// Signs decisions taken through the API; `None`: they are refused.
    pub signer: Option<Arc<crate::approval::Signer>>,
    pub audit_dir: PathBuf,
    /// The approval queue: the state dir's files, or Redis with `[cluster]`.
    pub tickets: Arc<dyn crate::approval::TicketStore>,
    /// Trust histories: the state dir's, or the cluster's.
    pub trust: crate::trust::TrustStore,
    pub servers: Vec<String>,
    pub dashboard: Arc<super::dashboard::Dashboard>,
}

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = &mut stop => return,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(req, &shared).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("admin connection: {e}");
            }
            drop(permit);
        });
    }
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", body)
}

fn json((status, value): api::Reply) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Constant-time comparison (`subtle`), so the token cannot be guessed byte by byte from
/// timings. Only the length can differ quickly, and it is not secret.
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes()))
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let mut resp = gate(req, shared).await;
    ui::harden(resp.headers_mut());
    resp
}

async fn gate(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let host = req.headers().get(HOST).and_then(|v| v.to_str().ok());
    let foreign = req
        .headers()
        .get(ORIGIN)
        .is_some_and(|o| !o.to_str().is_ok_and(|o| ui::same_origin(o, host)));
    if foreign {
        return text(
            StatusCode::FORBIDDEN,
            "requests from another origin (a web page) are refused on the admin port\n",
        );
    }
    if shared.loopback {
        let host = req.headers().get(HOST).and_then(|v| v.to_str().ok());
        if !host.is_some_and(loopback_host) {
            return text(
                StatusCode::FORBIDDEN,
                "Host must name the loopback address\n",
            );
        }
    }
    let path = req.uri().path().to_owned();
    let probe = path == "/healthz" || path == "/readyz";
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    // The dashboard's shell: public, like the probes (it holds no data).
    if let (true, Some((content_type, body))) = (read, ui::asset(&path)) {
        return full(StatusCode::OK, content_type, body);
    }
    let needs_token = !probe && (!read || !shared.loopback || shared.token_explicit);
    if needs_token && !authorized(&req, &shared.token) {
        let mut resp = text(StatusCode::UNAUTHORIZED, "bearer token required\n");
        resp.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        return resp;
    }
    route(req.method(), &path, shared).await
}

async fn route(method: &Method, path: &str, shared: &Shared) -> Response<Body> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok\n"),
        (&Method::GET, ["readyz"]) => match (shared.readiness)() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => full(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("not ready: {why}\n"),
            ),
        },
        (&Method::GET, ["metrics"]) => {
            let trust = api::trust_scores(&shared.trust, &shared.servers);
            let body = prometheus::render(&shared.metrics, &trust);
            full(StatusCode::OK, prometheus::CONTENT_TYPE, body)
        }
        (&Method::GET, ["api", "v1", "servers"]) => {
            json(api::servers(&shared.trust, &shared.servers))
        }
        (&Method::GET, ["api", "v1", "alerts"]) => json(api::alerts(&shared.metrics)),
        (&Method::GET, ["api", "v1", "approvals"]) => json(api::approvals(&*shared.tickets)),
        (&Method::POST, ["api", "v1", "approvals", id, verb]) => json(api::decide(
            &*shared.tickets,
            id,
            verb,
            shared.signer.as_deref(),
        )),
        (&Method::GET, ["api", "v1", "audit", "stream"]) => {
            let body = audit_stream::stream(shared.audit_dir.clone());
            let mut resp = Response::new(BodyExt::boxed(body));
            let h = resp.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        (_, ["healthz" | "readyz" | "metrics"])
        | (_, ["api", "v1", "servers" | "alerts" | "approvals"])
        | (_, ["api", "v1", "approvals", _, _])
        | (_, ["api", "v1", "audit", "stream"]) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => match dashboard::route(&shared.dashboard, method, &segments).await {
            Some(reply) => json(reply),
            None => text(StatusCode::NOT_FOUND, "not found\n"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:9464",
            "127.0.0.1:1",
            "[::1]:9464",
            "[::1]",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:9464",
            "10.0.0.1",
            "[fe80::1]:1",
            "",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
