//! A POSTed message of the legacy era (2024-11-05 … 2025-11-25): body read under the cap and
//! the time limit, its proof checked and the session admitted (or opened by `initialize`),
//! both by `admission`, then the pipeline's verdict acted on — towards the session's stdio
//! process or its HTTP upstream.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::admission::{self, Opening, Proof};
use super::ask_stream;
use super::body::{self, cpu, OutBody, ReadError};
use super::edge;
use super::session::Session;
use super::slots::Slot;
use super::status::{self, EdgeRefusal, SESSION_HEADER};
use super::upstream::SessionUpstream;
use super::{Route, Shared};
use crate::codec;
use crate::codec::Id;
use crate::pipeline::deliver::{self, Delivery, Onward, Settled};
use crate::pipeline::{Pipeline, Routing};
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

/// A POST whose body was read (under the cap and time limit, once, by the handler), as both
/// eras' POST handlers take it.
pub struct Posted {
    pub shared: Arc<Shared>,
    pub route: Arc<Route>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub client: IpAddr,
}

impl Posted {
    /// Its parts by name, each of a different type (so an order mix-up does not compile).
    pub fn into_parts(self) -> (Arc<Shared>, Arc<Route>, HeaderMap, Bytes, IpAddr) {
        (
            self.shared,
            self.route,
            self.headers,
            self.body,
            self.client,
        )
    }
}

/// A legacy-era POST.
pub async fn handle(posted: Posted) -> Response<OutBody> {
    let (shared, route, headers, body, client) = posted.into_parts();
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
        // Behind a Service, a legacy session lives on the replica that opened it (issue 14).
        "unknown or ended session, or one another replica opened (sessions stay on their \
         replica: route sticky on Mcp-Session-Id): start a new one with initialize"
            .into(),
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
    let peeks = cpu(body.len(), move || codec::facts_all(&b)).await;
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
    let session = match open_session(shared, route, kid, slot).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Hook (issue 11): a client that takes event streams can be asked for approvals on them.
    if status::accepts_sse(headers) {
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
pub async fn open_session(
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
    let id = super::session::new_id();
    let (sessions, gone) = (shared.sessions.clone(), id.clone());
    // The upstream's exit hook forgets the session (a stdio server that exited).
    let upstream = SessionUpstream::open(shared, &route, &pipeline, move || {
        sessions.remove(&gone);
    })
    .await?;
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
    let first = judge_first(p, body.clone(), sig, headers).await;
    // Hook (issue 11): a hold asked through the client answers on this POST's own event
    // stream — the proxy's `elicitation/create` first, then the call's answer (`ask_stream`).
    let first = match ask_stream::take(first) {
        Ok(held) => {
            let resp = ask_stream::respond(shared, session, headers, body, *held).await;
            return (resp, true);
        }
        Err(settled) => settled,
    };
    let settled = deliver::wait_off_workers(p, first).await;
    act(shared, session, headers, body, settled).await
}

/// Act on a settled verdict: answer, or forward to the upstream and relay its answer.
pub async fn act(
    shared: &Shared,
    session: &Arc<Session>,
    headers: &HeaderMap,
    body: Bytes,
    settled: Settled,
) -> (Response<OutBody>, bool) {
    let judged = delivered(settled, body);
    if judged.forward.is_none() {
        return (refused(judged.answer), false);
    }
    let resp = session
        .upstream
        .send(&session.exchange(shared, headers), judged)
        .await;
    (resp, true)
}

/// The pipeline's verdict on a client message (its signature already checked: `sig`), settled
/// by `pipeline::deliver` on the blocking pool (checks, approval tickets, a durable record on
/// disk first, a hold waited out: none of it on the async workers): the bytes to forward, and
/// the proxy's own answer. The record is written before the message moves on (its latency is
/// the decision's, not the upstream's).
pub async fn judge(
    p: &Arc<Pipeline>,
    body: Bytes,
    sig: Option<SigOutcome>,
    headers: &HeaderMap,
) -> Judged {
    let first = judge_first(p, body.clone(), sig, headers).await;
    delivered(deliver::wait_off_workers(p, first).await, body)
}

/// The checks and the settling on the blocking pool, a hold handed back unwaited.
/// Hook (issue 13): the request's W3C trace context headers join its record when `_meta` had
/// none (`telemetry::traceparent::adopt_headers`).
async fn judge_first(
    p: &Arc<Pipeline>,
    body: Bytes,
    sig: Option<SigOutcome>,
    headers: &HeaderMap,
) -> Settled {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (traceparent, tracestate) = (header("traceparent"), header("tracestate"));
    deliver::judge_off_workers(p, move |p| {
        let mut outcome = p.from_client_with(&body, sig.as_ref());
        crate::telemetry::traceparent::adopt_headers(
            &mut outcome.record,
            traceparent.as_deref(),
            tracestate.as_deref(),
        );
        outcome
    })
    .await
}

/// A judged client message: what goes on, the proxy's own answer, and the requests among what
/// goes on that await an answer (the pipeline's `Routing::Asked`: a stdio upstream attaches
/// the stream they are answered on to them; nothing reads the message again for its ids).
pub struct Judged {
    pub forward: Option<Bytes>,
    pub answer: Option<Vec<u8>>,
    pub asked: Vec<Id>,
}

/// A settled client message as a `Judged`; its record is written here, before the message
/// moves on.
fn delivered(settled: Settled, body: Bytes) -> Judged {
    // A client message is never a sampling request: nothing but an act is left.
    let Settled::Act(Delivery {
        onward,
        back,
        record,
        routing,
    }) = settled
    else {
        return Judged {
            forward: None,
            answer: None,
            asked: Vec::new(),
        };
    };
    drop(record);
    let forward = onward.map(|o| match o {
        Onward::Original => body,
        Onward::Bytes(b) => Bytes::from(b),
    });
    Judged {
        forward,
        answer: back,
        asked: match routing {
            Routing::Asked(ids) => ids,
            _ => Vec::new(),
        },
    }
}

/// Nothing goes on: the proxy's own answer, or 202 when there is none (a refused notification).
pub fn refused(answer: Option<Vec<u8>>) -> Response<OutBody> {
    match answer {
        Some(a) => status::error_answer(a),
        None => status::empty(StatusCode::ACCEPTED),
    }
}

/// Send the proxy's own listing request upstream and wait (bounded) until the pipeline has seen
/// its answer: the stdio reader, or the relay of the HTTP answer, runs it through `from_server`,
/// which pins it and asks for further pages itself.
async fn prefetch(shared: &Shared, session: &Arc<Session>, headers: &HeaderMap, request: Vec<u8>) {
    let p = session.pipeline.clone();
    let sent = session
        .upstream
        .send_own(&session.exchange(shared, headers), request)
        .await;
    if !sent {
        return;
    }
    let _ =
        tokio::task::spawn_blocking(move || p.await_prefetch(crate::pipeline::PREFETCH_WAIT)).await;
}
