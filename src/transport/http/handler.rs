//! One HTTP request: edge checks first (nothing is routed for a refused Origin or Host), then
//! the route by path, the protocol era by `MCP-Protocol-Version`, and the method: POST carries
//! messages, GET opens the session's server-message stream, DELETE ends the session. The
//! 2024-11-05 endpoints `ROUTE/sse` and `ROUTE/messages` go to `legacy_sse`.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ALLOW};
use hyper::{Method, Request, Response, StatusCode};

use super::admission;
use super::body::OutBody;
use super::post::{self, unknown_session};
use super::session::Session;
use super::status::{self, accepts_sse, EdgeRefusal, SESSION_HEADER};
use super::{capabilities, legacy_sse, modern, Peer, Route, Shared};

/// Protocol revisions this proxy carries; the newest is the modern era.
const LEGACY_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
pub const MODERN_VERSION: &str = "2026-07-28";
/// 2026-07-28 schema: `UNSUPPORTED_PROTOCOL_VERSION`.
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<OutBody> {
    let client = req
        .extensions()
        .get::<Peer>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0);
    let route = shared.routes.get(req.uri().path()).cloned();
    let server = route.as_ref().map_or("-", |r| r.name.as_str());
    if let Err(refusal) = shared.edge.check(req.headers()) {
        return refusal.answer(&shared, server, "", 0);
    }
    if let Some(prefix) = req.uri().path().strip_suffix(capabilities::WELL_KNOWN) {
        return capabilities::answer(&shared, prefix, req.method(), req.headers()).await;
    }
    let Some(route) = route else {
        // 2024-11-05 HTTP+SSE endpoints: `ROUTE/sse` and `ROUTE/messages`.
        if let Some(legacy) = legacy_sse::route_of(&shared, req.uri().path()) {
            return legacy_sse::handle(shared, legacy, req, client).await;
        }
        return status::text(
            StatusCode::NOT_FOUND,
            "no MCP server is served at this path",
        );
    };
    let modern = match era(req.headers()) {
        Ok(m) => m,
        Err(v) => return unsupported_version(&shared, &route, req, v).await,
    };
    let (parts, body) = req.into_parts();
    match (parts.method, modern) {
        (Method::POST, _) => {
            let body = match post::read_body(&shared, &route, &parts.headers, body).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let posted = post::Posted {
                shared,
                route,
                headers: parts.headers,
                body,
                client,
            };
            if modern {
                modern::handle(posted).await
            } else {
                post::handle(posted).await
            }
        }
        (Method::GET, false) => get(&shared, &route, &parts.headers).await,
        (Method::DELETE, false) => delete(&shared, &route, &parts.headers).await,
        // 2026-07-28 has no sessions and no GET stream.
        _ => {
            let mut r = status::empty(StatusCode::METHOD_NOT_ALLOWED);
            let allow = if modern { "POST" } else { "GET, POST, DELETE" };
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            r
        }
    }
}

/// -32022 (HTTP 400) for a protocol version this proxy does not carry. The body is read (under
/// the usual cap and time limit) so the error answers the request's id, and `data` carries what
/// the 2026-07-28 schema's `UnsupportedProtocolVersionError` asks for: `supported` (the versions
/// a client may name in a request's `_meta`, i.e. the modern era's; the 2025 revisions are
/// negotiated by `initialize`, as the message says) and `requested`.
async fn unsupported_version(
    shared: &Arc<Shared>,
    route: &Route,
    req: Request<Incoming>,
    requested: String,
) -> Response<OutBody> {
    let (parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        match post::read_body(shared, route, &parts.headers, body).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    } else {
        Bytes::new()
    };
    EdgeRefusal::new(
        StatusCode::BAD_REQUEST,
        "http.unsupported_version",
        "protocol_version",
        format!(
            "MCP-Protocol-Version {requested:?} is not supported; supported: {}, {MODERN_VERSION}",
            LEGACY_VERSIONS.join(", ")
        ),
    )
    .code(UNSUPPORTED_PROTOCOL_VERSION)
    .with_data("supported", serde_json::json!([MODERN_VERSION]))
    .with_data("requested", serde_json::Value::String(requested))
    .about(&body)
    .answer(shared, &route.name, "", body.len() as u64)
}

/// `Ok(true)` for the modern era; `Err` names an unknown version.
fn era(headers: &HeaderMap) -> Result<bool, String> {
    let Some(v) = headers.get("mcp-protocol-version") else {
        return Ok(false);
    };
    let v = v.to_str().unwrap_or("");
    if v == MODERN_VERSION {
        Ok(true)
    } else if LEGACY_VERSIONS.contains(&v) {
        Ok(false)
    } else {
        Err(v.to_owned())
    }
}

/// The session a GET or DELETE names, if this caller may use it (`admission::admit`).
fn session_for(
    shared: &Shared,
    route: &Route,
    headers: &HeaderMap,
) -> Result<Arc<Session>, Response<OutBody>> {
    let proof =
        admission::proof(route, headers, b"").map_err(|r| r.answer(shared, &route.name, "", 0))?;
    let sid = match headers.get(SESSION_HEADER).map(|v| v.to_str()) {
        Some(Ok(sid)) => Some(sid),
        Some(Err(_)) => return Err(post::malformed_session(shared, route, b"")),
        None => None,
    };
    let Some(sid) = sid else {
        return Err(EdgeRefusal::new(
            StatusCode::BAD_REQUEST,
            "http.session_missing",
            "session",
            "this request needs the Mcp-Session-Id header from the initialize response".into(),
        )
        .answer(shared, &route.name, "", 0));
    };
    let Some(s) = shared.sessions.get(sid, &route.name) else {
        return Err(unknown_session(shared, route, b""));
    };
    admission::admit(&s, &proof).map_err(|r| r.answer(shared, &route.name, &s.id, 0))?;
    Ok(s)
}

/// GET: the stream of server messages not tied to a request.
async fn get(shared: &Shared, route: &Route, headers: &HeaderMap) -> Response<OutBody> {
    let session = match session_for(shared, route, headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !accepts_sse(headers) {
        return status::text(
            StatusCode::NOT_ACCEPTABLE,
            "GET opens an event stream: accept text/event-stream",
        );
    }
    let busy = session.busy();
    open_stream(shared, &session, headers)
        .await
        .map(|b| b.on_drop(move || drop(busy)))
}

/// The session's stream of server messages not tied to a request (GET, or a legacy SSE stream).
pub async fn open_stream(
    shared: &Shared,
    session: &Session,
    headers: &HeaderMap,
) -> Response<OutBody> {
    session
        .upstream
        .events(&session.exchange(shared, headers))
        .await
}

/// DELETE: end the session — its process, or the upstream's session.
async fn delete(shared: &Shared, route: &Route, headers: &HeaderMap) -> Response<OutBody> {
    let session = match session_for(shared, route, headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    shared.sessions.remove(&session.id);
    session.upstream.end(headers).await;
    status::empty(StatusCode::OK)
}
