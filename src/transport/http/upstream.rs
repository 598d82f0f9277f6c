//! A session's upstream, whichever kind it is, behind one interface: open it for a route, send
//! it a client message the pipeline let through (and answer on the request's own stream), send
//! the proxy's own request, open the stream of server messages not tied to a request, close it.
//! A stdio process of the session's own (`StdioSession`) and an HTTP upstream session
//! (`HttpSession`: the client, the upstream's session id) each keep their own state; this is
//! the one place that tells them apart.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};

use super::body::OutBody;
use super::http_upstream::HttpSession;
use super::relay::{self, Relay};
use super::signer::Egress;
use super::status::{self, accepts_sse, collect_json, sse_response};
use super::stdio_upstream::{SendError, StdioSession};
use super::{Route, Shared, Upstream};
use crate::codec::{self, Facts};
use crate::pipeline::Pipeline;

pub enum SessionUpstream {
    Stdio(Arc<StdioSession>),
    Http(Arc<HttpSession>),
}

impl SessionUpstream {
    /// Start the upstream side of a new session on `route`: a process from the pool (`on_exit`
    /// runs once it is gone), or an HTTP session whose upstream id `initialize` will bring.
    pub async fn open(
        shared: &Shared,
        route: &Route,
        pipeline: &Arc<Pipeline>,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> Result<SessionUpstream, Response<OutBody>> {
        match &route.upstream {
            Upstream::Stdio(pool) => {
                let started =
                    StdioSession::spawn(pool, pipeline, Egress::of(route), shared.grace, on_exit)
                        .await;
                started.map(SessionUpstream::Stdio).map_err(|e| {
                    let msg = format!("cannot start server {:?}: {e}", pool.argv().join(" "));
                    status::text(StatusCode::BAD_GATEWAY, &msg)
                })
            }
            Upstream::Http(up) => Ok(SessionUpstream::Http(Arc::new(HttpSession::new(
                up.clone(),
            )))),
        }
    }

    /// Whether the upstream has a stream of its own messages from the start (a stdio server
    /// may speak first; an HTTP upstream's GET stream opens after `initialized`).
    pub fn speaks_first(&self) -> bool {
        matches!(self, SessionUpstream::Stdio(_))
    }

    /// Forward a client message the pipeline let through; `answer` is the proxy's own part of
    /// the answer (refused elements of a batch), sent first.
    pub async fn send(
        &self,
        shared: &Shared,
        route: &Route,
        pipeline: &Arc<Pipeline>,
        headers: &HeaderMap,
        forward: Bytes,
        answer: Option<Vec<u8>>,
    ) -> Response<OutBody> {
        match self {
            SessionUpstream::Stdio(s) => to_stdio(shared, s, headers, &forward, answer).await,
            SessionUpstream::Http(hs) => {
                to_http(shared, route, pipeline, hs, headers, forward).await
            }
        }
    }

    /// Send the proxy's own request (a listing before a call); its answer is consumed by the
    /// pipeline (`from_server`), never shown to the client. Returns whether it went out.
    pub async fn send_own(
        &self,
        shared: &Shared,
        route: &Route,
        pipeline: &Arc<Pipeline>,
        headers: &HeaderMap,
        request: Vec<u8>,
    ) -> bool {
        match self {
            SessionUpstream::Stdio(s) => s.send(&request).is_ok(),
            SessionUpstream::Http(hs) => {
                let resp =
                    to_http(shared, route, pipeline, hs, headers, Bytes::from(request)).await;
                // Drain it: the relay judges each message as the body is read.
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                true
            }
        }
    }

    /// The session's stream of server messages not tied to a request (GET, a legacy SSE stream).
    pub async fn events(
        &self,
        shared: &Shared,
        route: &Route,
        pipeline: &Arc<Pipeline>,
        headers: &HeaderMap,
    ) -> Response<OutBody> {
        match self {
            SessionUpstream::Stdio(s) => {
                let Some(release) = shared.stream_slot() else {
                    return status::too_many_streams();
                };
                match s.routes.open_get() {
                    Ok(rx) => sse_response(OutBody::channel(rx, true).on_drop(release)),
                    Err(_) => status::text(
                        StatusCode::CONFLICT,
                        "this session already has a GET stream open",
                    ),
                }
            }
            SessionUpstream::Http(hs) => {
                let sid = hs.upstream_id();
                // Last-Event-ID is among the passed headers: resumption is the upstream's.
                match hs
                    .upstream
                    .send(Method::GET, headers, sid.as_deref(), Bytes::new())
                    .await
                {
                    Ok(resp) => {
                        relay(shared, route, pipeline, hs)
                            .respond(resp, || shared.stream_slot())
                            .await
                    }
                    Err(e) => unreachable_upstream(&e),
                }
            }
        }
    }

    /// Stop the process now (closed stdin → SIGTERM → SIGKILL); an HTTP session needs `end`.
    pub fn close(&self) {
        if let SessionUpstream::Stdio(s) = self {
            s.close();
        }
    }

    /// End the session upstream: the process, or the upstream's session (DELETE with `headers`).
    pub async fn end(&self, headers: &HeaderMap) {
        match self {
            SessionUpstream::Stdio(s) => s.close(),
            SessionUpstream::Http(hs) => {
                let Some(sid) = hs.upstream_id() else {
                    return;
                };
                if let Err(e) = hs
                    .upstream
                    .send(Method::DELETE, headers, Some(&sid), Bytes::new())
                    .await
                {
                    tracing::warn!("ending the upstream session: {e}");
                }
            }
        }
    }
}

fn relay(shared: &Shared, route: &Route, p: &Arc<Pipeline>, hs: &Arc<HttpSession>) -> Relay {
    Relay {
        pipeline: p.clone(),
        upstream: hs.upstream.clone(),
        session: Some(hs.clone()),
        max: shared.limits.max_message_bytes,
        egress: Egress::of(route),
    }
}

fn unreachable_upstream(e: &str) -> Response<OutBody> {
    tracing::warn!("{e}");
    status::text(
        StatusCode::BAD_GATEWAY,
        "the upstream server cannot be reached",
    )
}

/// Forward to the session's stdio process and answer on a stream of the request's own.
async fn to_stdio(
    shared: &Shared,
    s: &Arc<StdioSession>,
    headers: &HeaderMap,
    forward: &[u8],
    answer: Option<Vec<u8>>,
) -> Response<OutBody> {
    let facts: Vec<Facts> = codec::facts_all(forward);
    for id in facts.iter().filter_map(|f| f.cancels.as_ref()) {
        s.routes.forget(id);
    }
    let slot = accepts_sse(headers).then(|| shared.stream_slot()).flatten();
    let opened = codec::facts::any_request(&facts).then(|| {
        s.routes
            .open_request(&facts, slot.is_some(), answer.as_deref())
    });
    if let Err(e) = s.send(forward) {
        for id in facts.iter().filter_map(|f| f.id.as_ref()) {
            s.routes.forget(id);
        }
        return match e {
            SendError::Gone => {
                status::text(StatusCode::NOT_FOUND, "the session's server has exited")
            }
            SendError::Full => status::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is not reading; retry later",
            ),
        };
    }
    let Some((rx, _)) = opened else {
        return match answer {
            Some(a) => status::json(StatusCode::OK, a),
            None => status::empty(StatusCode::ACCEPTED),
        };
    };
    match slot {
        Some(release) => sse_response(OutBody::channel(rx, true).on_drop(release)),
        None => collect_json(rx).await,
    }
}

/// Forward to the HTTP upstream under its own session id, and relay its answer.
async fn to_http(
    shared: &Shared,
    route: &Route,
    p: &Arc<Pipeline>,
    hs: &Arc<HttpSession>,
    headers: &HeaderMap,
    forward: Bytes,
) -> Response<OutBody> {
    if let Some(v) = headers.get("mcp-protocol-version") {
        *hs.version.lock().unwrap_or_else(|e| e.into_inner()) = Some(v.clone());
    }
    let sid = hs.upstream_id();
    let sent = hs
        .upstream
        .send(Method::POST, headers, sid.as_deref(), forward)
        .await;
    if sid.is_none() {
        // The session's first exchange tells whether the upstream is up (trust: availability).
        p.upstream_started(sent.as_ref().is_ok_and(|r| r.status().is_success()));
    }
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return unreachable_upstream(&e),
    };
    if sid.is_none() {
        hs.set_upstream_id(relay::upstream_session_id(&resp));
    }
    relay(shared, route, p, hs)
        .respond(resp, || shared.stream_slot())
        .await
}
