//! The upstream, whichever kind it is, behind one interface; this is the one place that tells
//! the kinds apart. A route's `Upstream` (a pool of stdio processes, or an HTTP client) answers
//! what does not need a session: does a request hold a process, a modern request's prefetch and
//! send (`sole.rs` for a process of its own, a sessionless POST otherwise), readiness, stop.
//! A session's `SessionUpstream` is opened from it: send a client message the pipeline let
//! through (and answer on the request's own stream), send the proxy's own request, open the
//! stream of server messages not tied to a request, close it. A stdio process of the session's
//! own (`StdioSession`) and an HTTP upstream session (`HttpSession`: the client, the upstream's
//! session id) each keep their own state.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};

use super::body::OutBody;
use super::http_upstream::HttpSession;
use super::post::Judged;
use super::relay::{self, Relay};
use super::signer::Egress;
use super::slots::Slot;
use super::status::{self, accepts_sse, collect_json, sse_response};
use super::stdio_upstream::{SendError, StdioSession};
use super::{prefetch, sole, HttpUpstream, Pool, Route, Shared};
use crate::pipeline::Pipeline;

/// One client exchange, as every upstream operation takes it: the server's shared state, the
/// route it came in on, the pipeline that judged it, the client's headers (passed on upstream).
pub struct Exchange<'a> {
    pub shared: &'a Shared,
    pub route: &'a Route,
    pub pipeline: &'a Arc<Pipeline>,
    pub headers: &'a HeaderMap,
}

/// Where a route's messages go.
pub enum Upstream {
    /// A stdio server started per session (or per modern request) from a pool of warm processes.
    Stdio(Arc<Pool>),
    Http(Arc<HttpUpstream>),
}

/// A modern request's upstream, readied before the request is judged: the process that
/// answered the proxy's listing takes the call too; the client's cap slot for the process.
pub(super) struct Stateless {
    pub early: Option<Arc<StdioSession>>,
    pub slot: Option<Slot<String>>,
}

impl Upstream {
    /// Whether a session or a modern request holds a process of its own (counted against the
    /// client's cap while it runs).
    pub fn spawns_processes(&self) -> bool {
        matches!(self, Upstream::Stdio(_))
    }

    /// Whether readiness needs a background probe (`probe`); a pool knows its own state.
    pub fn probed(&self) -> bool {
        matches!(self, Upstream::Http(_))
    }

    /// Probe reachability now (an HTTP upstream's TCP port; a pool's last start).
    pub async fn probe(&self, timeout: std::time::Duration) -> bool {
        match self {
            Upstream::Stdio(pool) => pool.healthy(),
            Upstream::Http(up) => up.reachable(timeout).await,
        }
    }

    /// Ready to serve, given the last probe's result; else what `/readyz` says.
    pub fn ready(&self, last_probe: bool) -> Result<(), &'static str> {
        match self {
            Upstream::Stdio(pool) if !pool.healthy() => Err("the server process did not start"),
            Upstream::Http(_) if !last_probe => Err("the upstream cannot be reached"),
            _ => Ok(()),
        }
    }

    /// `serve` is stopping: no more warm processes.
    pub fn stop(&self) {
        if let Upstream::Stdio(pool) = self {
            pool.stop();
        }
    }

    /// A modern call before any listing in its variant: the proxy lists first, through the
    /// upstream itself (`prefetch.rs`) or the request's own process (`sole.rs`).
    pub(super) async fn prefetch(
        &self,
        shared: &Shared,
        route: &Route,
        p: &Arc<Pipeline>,
        headers: &HeaderMap,
        body: &[u8],
        slot: Option<Slot<String>>,
    ) -> Stateless {
        let early = match self {
            Upstream::Http(up) => {
                let (max, timeout) = (shared.limits.max_message_bytes, shared.body_timeout);
                prefetch::before_call(p, up, headers, body, max, timeout).await;
                None
            }
            Upstream::Stdio(pool) => sole::prefetch(shared, route, pool, p, body).await,
        };
        Stateless { early, slot }
    }

    /// A judged modern request, sent without a session: a process of its own (which the
    /// client's slot counts), or one POST upstream; its answer relayed.
    pub(super) async fn send_stateless(
        &self,
        x: &Exchange<'_>,
        judged: Judged,
        ready: Stateless,
    ) -> Response<OutBody> {
        let up = match self {
            Upstream::Stdio(pool) => return sole::answer(x, pool, judged, ready).await,
            Upstream::Http(up) => up,
        };
        let forward = judged.forward.unwrap_or_default();
        // Dropping this future (client gone) drops the upstream request: the upstream sees its
        // connection close, the HTTP form of cancellation.
        let resp = match up.send(Method::POST, x.headers, None, forward).await {
            Ok(r) => r,
            Err(e) => return unreachable_upstream(&e),
        };
        relay(x, up, None)
            .respond(resp, || x.shared.stream_slot())
            .await
    }
}

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
    pub async fn send(&self, x: &Exchange<'_>, judged: Judged) -> Response<OutBody> {
        match self {
            SessionUpstream::Stdio(s) => to_stdio(x, s, judged).await,
            SessionUpstream::Http(hs) => {
                let first = judged.answer.map(Bytes::from);
                to_http(x, hs, judged.forward.unwrap_or_default(), first).await
            }
        }
    }

    /// Send the proxy's own request (a listing before a call); its answer is consumed by the
    /// pipeline (`from_server`), never shown to the client. Returns whether it went out.
    pub async fn send_own(&self, x: &Exchange<'_>, request: Vec<u8>) -> bool {
        match self {
            SessionUpstream::Stdio(s) => s.send(&request).is_ok(),
            SessionUpstream::Http(hs) => {
                let resp = to_http(x, hs, Bytes::from(request), None).await;
                // Drain it: the relay judges each message as the body is read.
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                true
            }
        }
    }

    /// The session's stream of server messages not tied to a request (GET, a legacy SSE stream).
    pub async fn events(&self, x: &Exchange<'_>) -> Response<OutBody> {
        let (shared, headers) = (x.shared, x.headers);
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
                        relay(x, &hs.upstream, Some(hs))
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

/// The relay of an HTTP upstream's answer: every message through `from_server` and `deliver`.
fn relay(x: &Exchange<'_>, up: &Arc<HttpUpstream>, session: Option<&Arc<HttpSession>>) -> Relay {
    Relay {
        pipeline: x.pipeline.clone(),
        upstream: up.clone(),
        session: session.cloned(),
        max: x.shared.limits.max_message_bytes,
        egress: Egress::of(x.route),
        first: None,
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
async fn to_stdio(x: &Exchange<'_>, s: &Arc<StdioSession>, judged: Judged) -> Response<OutBody> {
    let (shared, headers) = (x.shared, x.headers);
    let Judged {
        forward,
        answer,
        asked,
    } = judged;
    let p = s.pipeline();
    let slot = accepts_sse(headers).then(|| shared.stream_slot()).flatten();
    let opened = s
        .routes
        .open_request(p, &asked, slot.is_some(), answer.as_deref());
    if let Err(e) = s.send(&forward.unwrap_or_default()) {
        p.unsent(&asked);
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
/// `first`: the proxy's own answers to refused elements of a batch, joined to the upstream's.
async fn to_http(
    x: &Exchange<'_>,
    hs: &Arc<HttpSession>,
    forward: Bytes,
    first: Option<Bytes>,
) -> Response<OutBody> {
    let (p, headers) = (x.pipeline, x.headers);
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
    let mut relay = relay(x, &hs.upstream, Some(hs));
    relay.first = first;
    relay.respond(resp, || x.shared.stream_slot()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readiness is told per kind here, and only here: an HTTP upstream by its last probe, a
    /// pool by its last start; each says why not in the words `/readyz` shows.
    #[test]
    fn readiness_by_kind() {
        let http = Upstream::Http(Arc::new(
            HttpUpstream::new("http://127.0.0.1:9/mcp").unwrap(),
        ));
        assert!(http.probed() && !http.spawns_processes());
        assert_eq!(http.ready(false), Err("the upstream cannot be reached"));
        assert_eq!(http.ready(true), Ok(()));
        // Size 0: no process started yet, assumed able to start one.
        let stdio = Upstream::Stdio(Pool::new(vec!["true".into()], 0));
        assert!(!stdio.probed() && stdio.spawns_processes());
        assert_eq!(stdio.ready(false), Ok(()));
        stdio.stop();
    }
}
