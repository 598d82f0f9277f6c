//! A POSTed message of the legacy era (2024-11-05 … 2025-11-25): body read under the cap and
//! the time limit, its proof checked and the session admitted (or opened by `initialize`),
//! both by `admission`, then the pipeline's verdict acted on — towards the session's stdio
//! process or its HTTP upstream.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::admission::{self, Opening, Proof};
use super::ask_stream;
use super::body::{self, OutBody, ReadError};
use super::edge;
use super::http_upstream::{HttpSession, HttpUpstream};
use super::message;
use super::relay::{self, Relay};
use super::session::{Session, SessionUpstream};
use super::signer::Egress;
use super::slots::Slot;
use super::status::{self, EdgeRefusal, SESSION_HEADER};
use super::stdio_upstream::{SendError, StdioSession};
use super::verdict::{
    accepts_sse, collect_json, cpu, decide, has_requests, judge, settle, sse_response,
};
use super::{Route, Shared, Upstream};
use crate::pipeline::Pipeline;
use crate::sig::http_scheme::HttpSigHeaders;
use crate::sig::keys::KeyRole;
use crate::sig::outcome::Outcome as SigOutcome;
use crate::sig::verifier::Expect;

/// Read the body: refused on its declared length before a byte is read, or at the cap.
pub async fn read_body(
    shared: &Shared,
    route: &Route,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Bytes, Response<OutBody>> {
    let max = shared.limits.max_message_bytes;
    let too_large = |seen: u64| {
        EdgeRefusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "frame.oversize",
            "max_message_bytes",
            format!("message of {seen} bytes exceeds the limit of {max} bytes (proxy.max_message_bytes)"),
        )
        .alert()
        .answer(shared, &route.name, "", seen)
    };
    if let Some(len) = edge::declared_too_large(headers, max) {
        return Err(too_large(len));
    }
    let timeout = shared.body_timeout;
    match body::read_capped(body, max, timeout).await {
        Ok(b) => Ok(b),
        Err(ReadError::TooLarge { seen }) => Err(too_large(seen)),
        Err(ReadError::Broken(why)) => Err(status::text(StatusCode::BAD_REQUEST, &why)),
        Err(ReadError::TimedOut) => Err(EdgeRefusal::new(
            StatusCode::REQUEST_TIMEOUT,
            "http.timeout",
            "serve.body_timeout_secs",
            format!("the request body did not arrive within {timeout:?} (serve.body_timeout_secs)"),
        )
        .answer(shared, &route.name, "", 0)),
    }
}

/// The HTTP header signature, when the request carries one (none: the pipeline looks for a
/// message-scheme signature inside the body, and finds it missing or not).
pub fn signature(
    route: &Route,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<SigOutcome>, EdgeRefusal> {
    let Some(verifier) = route.guards.verifier.as_ref() else {
        return Ok(None);
    };
    if let Some(h) = edge::duplicate_signature_header(headers) {
        return Err(EdgeRefusal::new(
            StatusCode::UNAUTHORIZED,
            "auth.signature_invalid",
            "signatures.enforce",
            format!("the {h} header appears more than once; send each signature header once"),
        )
        .code(crate::errors::SIGNATURE_INVALID)
        .alert());
    }
    let lookup =
        HttpSigHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    if lookup.pairs().is_empty() {
        return Ok(None);
    }
    let expect = Expect {
        role: KeyRole::Client,
        audience: &route.name,
    };
    Ok(Some(verifier.check_http(&lookup, body, expect)))
}

/// A legacy-era POST.
pub async fn handle(
    shared: Arc<Shared>,
    route: Arc<Route>,
    headers: HeaderMap,
    body: Incoming,
    client: IpAddr,
) -> Response<OutBody> {
    let body = match read_body(&shared, &route, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let proof = match admission::prove(&route, &headers, &body).await {
        Ok(p) => p,
        Err(r) => {
            return r
                .about(&body)
                .answer(&shared, &route.name, "", body.len() as u64)
        }
    };
    let sid = match headers.get(SESSION_HEADER).map(|v| v.to_str()) {
        Some(Ok(sid)) => sid,
        // A session id that is not even visible ASCII is no id we issued: a probe.
        Some(Err(_)) => return malformed_session(&shared, &route, &body),
        None => return initialize(&shared, route, &headers, body, proof, client).await,
    };
    let Some(s) = shared.sessions.get(sid, &route.name) else {
        return unknown_session(&shared, &route, &body);
    };
    if let Err(r) = admission::admit(&s, &proof) {
        return r
            .about(&body)
            .answer(&shared, &route.name, &s.id, body.len() as u64);
    }
    let busy = s.busy();
    let (resp, _) = client_message(&shared, &s, &headers, body, proof.outcome).await;
    // In use until the answer (perhaps a stream) is complete.
    resp.map(|b| b.on_drop(move || drop(busy)))
}

pub fn malformed_session(shared: &Shared, route: &Route, body: &[u8]) -> Response<OutBody> {
    EdgeRefusal::new(
        StatusCode::BAD_REQUEST,
        "session.malformed",
        "session",
        "the Mcp-Session-Id header is not a session id this proxy issued (visible ASCII only)"
            .into(),
    )
    .alert()
    .code(-32600)
    .about(body)
    .answer(shared, &route.name, "", body.len() as u64)
}

pub fn unknown_session(shared: &Shared, route: &Route, body: &[u8]) -> Response<OutBody> {
    // Guessing at session ids is probing: an alert, like any refused credential.
    EdgeRefusal::new(
        StatusCode::NOT_FOUND,
        "session.unknown",
        "session",
        "unknown or ended session: start a new one with initialize".into(),
    )
    .alert()
    .code(-32001)
    .about(body)
    .answer(shared, &route.name, "", body.len() as u64)
}

/// No session header: only `initialize` may open a session, and only for a client that passes
/// admission (proved in enforce mode, under its caps) — checked before any process starts.
async fn initialize(
    shared: &Arc<Shared>,
    route: Arc<Route>,
    headers: &HeaderMap,
    body: Bytes,
    proof: Proof,
    client: IpAddr,
) -> Response<OutBody> {
    let slot = match admission::admit_new(shared, &proof, client, Opening::Session) {
        Ok(s) => s,
        Err(r) => {
            return r
                .about(&body)
                .answer(shared, &route.name, "", body.len() as u64)
        }
    };
    let b = body.clone();
    let peeks = cpu(body.len(), move || message::peek_all(&b)).await;
    if !peeks
        .iter()
        .any(|p| p.method.as_deref() == Some("initialize"))
    {
        return EdgeRefusal::new(
            StatusCode::BAD_REQUEST,
            "http.session_missing",
            "session",
            "no Mcp-Session-Id header: send initialize first, then the session id it returns"
                .into(),
        )
        .about(&body)
        .answer(shared, &route.name, "", body.len() as u64);
    }
    let kid = proof.kid().map(str::to_owned);
    let session = match open_session(shared, route, kid, slot) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Hook (issue 11): a client that takes event streams can be asked for approvals on them.
    if accepts_sse(headers) {
        session.pipeline.ask_through_client();
    }
    let busy = session.busy();
    shared.sessions.insert(session.clone());
    let (resp, forwarded) = client_message(shared, &session, headers, body, proof.outcome).await;
    let mut resp = resp.map(|b| b.on_drop(move || drop(busy)));
    if !forwarded || !resp.status().is_success() {
        shared.sessions.remove(&session.id);
        session.close();
        return resp;
    }
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        resp.headers_mut()
            .insert(HeaderName::from_static(SESSION_HEADER), v);
    }
    resp
}

/// A new session on `route`, its upstream started (not yet in the table): `initialize`, or a
/// legacy SSE stream opening. Admission (`admission::admit_new`) gave `slot`.
pub fn open_session(
    shared: &Arc<Shared>,
    route: Arc<Route>,
    kid: Option<String>,
    slot: Slot<String>,
) -> Result<Arc<Session>, Response<OutBody>> {
    let pipeline = Arc::new(Pipeline::new(
        &route.name,
        shared.limits,
        shared.audit.clone(),
        route.guards.clone(),
    ));
    let id = crate::session::random_id();
    let upstream = match &route.upstream {
        Upstream::Stdio(pool) => {
            let egress = Egress::of(&route);
            let started = pool.take().and_then(|child| {
                let (sessions, id) = (shared.sessions.clone(), id.clone());
                StdioSession::start(child, pipeline.clone(), egress, shared.grace, move || {
                    sessions.remove(&id);
                })
            });
            match started {
                Ok(s) => SessionUpstream::Stdio(s),
                Err(e) => {
                    pipeline.upstream_started(false);
                    let msg = format!("cannot start server {:?}: {e}", pool.argv().join(" "));
                    return Err(status::text(StatusCode::BAD_GATEWAY, &msg));
                }
            }
        }
        Upstream::Http(_) => SessionUpstream::Http(Arc::new(HttpSession::default())),
    };
    Ok(Arc::new(Session::new(
        id, route, pipeline, upstream, kid, slot,
    )))
}

/// Run one client message through the session's pipeline and act on the verdict. Returns the
/// answer and whether the message went on to the upstream.
pub async fn client_message(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    headers: &HeaderMap,
    body: Bytes,
    sig: Option<SigOutcome>,
) -> (Response<OutBody>, bool) {
    let p = &session.pipeline;
    // A call before any listing: the proxy lists and pins first (`pipeline::prefetch`).
    if let Some(request) = p.prefetch_request(&body) {
        prefetch(shared, session, headers, request).await;
    }
    let started = Instant::now();
    let judged = judge(p, &body, sig, headers).await;
    // Hook (issue 11): a hold asked through the client answers on this POST's own event
    // stream — the proxy's `elicitation/create` first, then the call's answer (`ask_stream`).
    let judged = match ask_stream::take(judged) {
        Ok((held, record)) => {
            let resp =
                ask_stream::respond(shared, session, headers, body, *held, record, started).await;
            return (resp, true);
        }
        Err(outcome) => outcome,
    };
    let outcome = settle(p, judged, started).await;
    act(shared, session, headers, body, outcome, started).await
}

/// Act on a settled verdict: answer, or forward to the upstream and relay its answer.
pub async fn act(
    shared: &Shared,
    session: &Arc<Session>,
    headers: &HeaderMap,
    body: Bytes,
    outcome: crate::pipeline::Outcome,
    started: Instant,
) -> (Response<OutBody>, bool) {
    let p = &session.pipeline;
    let Some((forward, answer)) = decide(p, outcome, body, started) else {
        return (status::empty(StatusCode::ACCEPTED), false);
    };
    let Some(forward) = forward else {
        return (status::error_answer(answer.unwrap_or_default()), false);
    };
    let resp = match &session.upstream {
        SessionUpstream::Stdio(s) => to_stdio(shared, s, headers, &forward, answer).await,
        SessionUpstream::Http(hs) => {
            let Upstream::Http(up) = &session.route.upstream else {
                return (status::empty(StatusCode::INTERNAL_SERVER_ERROR), false);
            };
            let egress = Egress::of(&session.route);
            to_http(shared, p, hs, up, headers, forward, egress).await
        }
    };
    (resp, true)
}

/// Send the proxy's own listing request upstream and wait (bounded) until the pipeline has seen
/// its answer: the stdio reader, or the relay of the HTTP answer, runs it through `from_server`,
/// which pins it and asks for further pages itself.
async fn prefetch(shared: &Shared, session: &Arc<Session>, headers: &HeaderMap, request: Vec<u8>) {
    let p = session.pipeline.clone();
    match &session.upstream {
        SessionUpstream::Stdio(s) => {
            if s.send(&request).is_err() {
                return;
            }
        }
        SessionUpstream::Http(hs) => {
            let Upstream::Http(up) = &session.route.upstream else {
                return;
            };
            let egress = Egress::of(&session.route);
            let resp = to_http(shared, &p, hs, up, headers, Bytes::from(request), egress).await;
            // Drain it: the relay judges each message as the body is read.
            let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
        }
    }
    let _ =
        tokio::task::spawn_blocking(move || p.await_prefetch(crate::pipeline::PREFETCH_WAIT)).await;
}

/// Forward to the session's stdio process and answer on a stream of the request's own.
async fn to_stdio(
    shared: &Shared,
    s: &Arc<StdioSession>,
    headers: &HeaderMap,
    forward: &[u8],
    answer: Option<Vec<u8>>,
) -> Response<OutBody> {
    let peeks = message::peek_all(forward);
    for id in peeks.iter().filter_map(|p| p.cancels.as_ref()) {
        s.routes.forget(id);
    }
    let slot = accepts_sse(headers).then(|| shared.stream_slot()).flatten();
    let opened = has_requests(&peeks).then(|| {
        s.routes
            .open_request(&peeks, slot.is_some(), answer.as_deref())
    });
    if let Err(e) = s.send(forward) {
        for id in peeks.iter().filter_map(|p| p.id.as_ref()) {
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
    p: &Arc<Pipeline>,
    hs: &Arc<HttpSession>,
    up: &Arc<HttpUpstream>,
    headers: &HeaderMap,
    forward: Bytes,
    egress: Egress,
) -> Response<OutBody> {
    if let Some(v) = headers.get("mcp-protocol-version") {
        *hs.version.lock().unwrap_or_else(|e| e.into_inner()) = Some(v.clone());
    }
    let sid = hs.upstream_id();
    let sent = up
        .send(Method::POST, headers, sid.as_deref(), forward)
        .await;
    if sid.is_none() {
        // The session's first exchange tells whether the upstream is up (trust: availability).
        p.upstream_started(sent.as_ref().is_ok_and(|r| r.status().is_success()));
    }
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("{e}");
            return status::text(
                StatusCode::BAD_GATEWAY,
                "the upstream server cannot be reached",
            );
        }
    };
    if sid.is_none() {
        hs.set_upstream_id(relay::upstream_session_id(&resp));
    }
    let relay = Relay {
        pipeline: p.clone(),
        upstream: up.clone(),
        session: Some(hs.clone()),
        max: shared.limits.max_message_bytes,
        egress,
    };
    relay.respond(resp, || shared.stream_slot()).await
}
