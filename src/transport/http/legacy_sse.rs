//! The HTTP+SSE transport of 2024-11-05, for old clients. `GET ROUTE/sse` opens a session and
//! its one stream, whose first event (`endpoint`) says where to POST; `POST
//! ROUTE/messages?sessionId=ID` takes a message and answers 202 at once; every server message
//! comes back on the stream as a `message` event. Sessions, pipelines and upstreams are the
//! streamable transport's: each POST runs `post::client_message` as an SSE-accepting request
//! (in arrival order, one session's messages at a time), and its answer — the JSON or the events
//! `from_server` let through — is copied onto the stream. Closing the stream ends the session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, ALLOW};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::admission::{self, Opening};
use super::body::OutBody;
use super::handler::open_stream;
use super::post::{client_message, open_session, read_body, unknown_session};
use super::routes::STREAM_BUFFER;
use super::session::Session;
use super::sse::{self, Event};
use super::status::{self, accepts_sse, sse_response, EVENT_STREAM, JSON};
use super::{Route, Shared};
use crate::sig::outcome::Outcome as SigOutcome;

/// Messages POSTed but not yet through the pipeline, per session; beyond this: 503.
const QUEUE: usize = 64;

/// Which legacy endpoint a path names.
#[derive(Clone, Copy)]
pub enum Endpoint {
    Stream,
    Messages,
}

struct Job {
    headers: HeaderMap,
    body: Bytes,
    sig: Option<SigOutcome>,
}

/// Open legacy streams: our session id → the queue of its POSTed messages.
#[derive(Default)]
pub struct LegacyStreams {
    map: Mutex<HashMap<String, mpsc::Sender<Job>>>,
}

impl LegacyStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Job>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `ROUTE/sse` or `ROUTE/messages`: the route, the path prefix it was reached by, the endpoint.
pub fn route_of(shared: &Shared, path: &str) -> Option<(Arc<Route>, String, Endpoint)> {
    let (prefix, which) = if let Some(p) = path.strip_suffix("/sse") {
        (p, Endpoint::Stream)
    } else {
        (path.strip_suffix("/messages")?, Endpoint::Messages)
    };
    let route = shared.routes.get(prefix)?.clone();
    Some((route, prefix.to_owned(), which))
}

pub async fn handle(
    shared: Arc<Shared>,
    (route, prefix, which): (Arc<Route>, String, Endpoint),
    req: Request<Incoming>,
    client: IpAddr,
) -> Response<OutBody> {
    match (req.method(), which) {
        (&Method::GET, Endpoint::Stream) => {
            open(shared, route, &prefix, req.headers(), client).await
        }
        (&Method::POST, Endpoint::Messages) => post(shared, route, req).await,
        (_, which) => {
            let mut r = status::empty(StatusCode::METHOD_NOT_ALLOWED);
            let allow = match which {
                Endpoint::Stream => "GET",
                Endpoint::Messages => "POST",
            };
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            r
        }
    }
}

/// `GET ROUTE/sse`: a new session, its upstream started, and the stream that carries it —
/// admitted like `initialize` (proved in enforce mode, under the caps) before anything starts.
async fn open(
    shared: Arc<Shared>,
    route: Arc<Route>,
    prefix: &str,
    headers: &HeaderMap,
    client: IpAddr,
) -> Response<OutBody> {
    if !accepts_sse(headers) {
        return status::text(
            StatusCode::NOT_ACCEPTABLE,
            "GET ROUTE/sse opens an event stream: accept text/event-stream",
        );
    }
    let admitted = admission::proof(&route, headers, b"").and_then(|proof| {
        let slot = admission::admit_new(&shared, &proof, client, Opening::Session)?;
        Ok((proof.kid().map(str::to_owned), slot))
    });
    let (kid, slot) = match admitted {
        Ok(a) => a,
        Err(r) => return r.answer(&shared, &route.name, "", 0),
    };
    let session = match open_session(&shared, route.clone(), kid, slot).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Busy while its stream is open (the stream is the session): never evicted.
    let busy = session.busy();
    shared.sessions.insert(session.clone());
    let (out, out_rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    let endpoint = format!("{prefix}/messages?sessionId={}", session.id);
    let event = Event {
        event: Some("endpoint".into()),
        data: Some(endpoint.into_bytes()),
        ..Event::default()
    };
    // The channel is new and empty: this cannot be full.
    let _ = out.try_send(event.encode(None));
    let (jobs, jobs_rx) = mpsc::channel(QUEUE);
    shared.legacy.lock().insert(session.id.clone(), jobs);
    if session.upstream.speaks_first() {
        // The stdio server's own messages (server requests, notifications) from the start.
        let get = open_stream(&shared, &session, headers).await;
        if !get.status().is_success() {
            end_session(&shared, &session.id);
            return get;
        }
        let (shared, id, out) = (shared.clone(), session.id.clone(), out.clone());
        tokio::spawn(async move {
            pipe(get, out).await;
            // The server is gone: end the client's stream too.
            shared.legacy.lock().remove(&id);
        });
    }
    tokio::spawn(worker(shared.clone(), session.clone(), jobs_rx, out));
    let id = session.id.clone();
    sse_response(OutBody::channel(out_rx, true).on_drop(move || {
        drop(busy);
        end_session(&shared, &id)
    }))
}

/// `POST ROUTE/messages?sessionId=ID`: checked at the edge, queued, 202.
async fn post(shared: Arc<Shared>, route: Arc<Route>, req: Request<Incoming>) -> Response<OutBody> {
    let sid = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("sessionId="))
            .map(str::to_owned)
    });
    let (parts, body) = req.into_parts();
    let body = match read_body(&shared, &route, &parts.headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let proof = match admission::prove(&route, &parts.headers, &body).await {
        Ok(p) => p,
        Err(r) => {
            return r
                .about(&body)
                .answer(&shared, &route.name, "", body.len() as u64)
        }
    };
    let Some(sid) = sid else {
        return status::text(
            StatusCode::BAD_REQUEST,
            "POST ROUTE/messages needs ?sessionId= from the endpoint event",
        );
    };
    let queue = shared.legacy.lock().get(&sid).cloned();
    let (Some(session), Some(queue)) = (shared.sessions.get(&sid, &route.name), queue) else {
        return unknown_session(&shared, &route, &body);
    };
    if let Err(r) = admission::admit(&session, &proof) {
        return r
            .about(&body)
            .answer(&shared, &route.name, &session.id, body.len() as u64);
    }
    let sig = proof.outcome;
    let mut headers = parts.headers;
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    match queue.try_send(Job { headers, body, sig }) {
        Ok(()) => status::empty(StatusCode::ACCEPTED),
        Err(mpsc::error::TrySendError::Full(_)) => status::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many messages waiting for this session; retry later",
        ),
        Err(mpsc::error::TrySendError::Closed(job)) => unknown_session(&shared, &route, &job.body),
    }
}

/// One session's messages through its pipeline, in the order they were POSTed; each answer is
/// copied onto the stream on a task of its own. An HTTP upstream's stream of server messages
/// is opened once the client said `notifications/initialized`.
async fn worker(
    shared: Arc<Shared>,
    session: Arc<Session>,
    mut jobs: mpsc::Receiver<Job>,
    out: mpsc::Sender<Bytes>,
) {
    let mut get_open = session.upstream.speaks_first();
    while let Some(job) = jobs.recv().await {
        let initialized = !get_open
            && crate::codec::facts_all(&job.body)
                .iter()
                .any(|p| p.method.as_deref() == Some("notifications/initialized"));
        let (resp, _) = client_message(&shared, &session, &job.headers, job.body, job.sig).await;
        tokio::spawn(pipe(resp, out.clone()));
        if initialized {
            get_open = true;
            let mut headers = job.headers;
            headers.insert(ACCEPT, HeaderValue::from_static(EVENT_STREAM));
            let get = open_stream(&shared, &session, &headers).await;
            if get.status().is_success() {
                tokio::spawn(pipe(get, out.clone()));
            }
        }
    }
}

/// Copy an answer onto the legacy stream: SSE events as they come, a JSON body as one
/// `message` event. Returns when the answer ends or the client's stream is gone.
async fn pipe(resp: Response<OutBody>, out: mpsc::Sender<Bytes>) {
    let status = resp.status();
    let kind = status::content_type(resp.headers());
    let mut body = resp.into_body();
    if kind.starts_with(EVENT_STREAM) {
        loop {
            let frame = tokio::select! {
                _ = out.closed() => return,
                f = body.frame() => f,
            };
            let Some(Ok(frame)) = frame else { return };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            // The outer stream keeps itself alive.
            if chunk.starts_with(b":") {
                continue;
            }
            if out.send(chunk).await.is_err() {
                return;
            }
        }
    }
    let Ok(collected) = body.collect().await;
    let bytes = collected.to_bytes();
    if kind.starts_with(JSON) && !bytes.is_empty() {
        let _ = out.send(sse::message(&bytes)).await;
    } else if !status.is_success() {
        let why = String::from_utf8_lossy(&bytes);
        tracing::warn!("legacy SSE: a message got no answer to send: {status} {why}");
    }
}

/// The stream closed (or never opened): forget the session and stop its upstream.
fn end_session(shared: &Arc<Shared>, id: &str) {
    shared.legacy.lock().remove(id);
    let Some(session) = shared.sessions.remove(id) else {
        return;
    };
    session.close();
    // An HTTP upstream's session is ended there too (DELETE), off this (drop) hook.
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move { session.upstream.end(&HeaderMap::new()).await });
    }
}
