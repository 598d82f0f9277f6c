//! An HTTP upstream's answer, relayed to the client with every JSON-RPC message in it run
//! through `Pipeline::from_server`: a JSON body as one message, an SSE stream event by event as
//! the events arrive (never buffered whole). Forward → the event as it came; Rewrite → the
//! rewritten data; Drop → only the event id (the client's resumption cursor stays right);
//! Answer → POSTed back to the upstream. A client that goes away closes the upstream stream.
//! Error statuses are no exception: their bodies are inspected the same way, or replaced by
//! the proxy's own -32603 when they are not JSON-RPC (an upstream's error page may quote
//! anything, secrets included).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use tokio::sync::mpsc;

use super::body::{self, OutBody};
use super::http_upstream::{HttpSession, HttpUpstream};
use super::signer::Egress;
use super::sse::{self, Event};
use super::status::{self, EVENT_STREAM, SESSION_HEADER};
use crate::audit::{Direction, Record};
use crate::errors::{Rejection, Source, INTERNAL_ERROR};
use crate::pipeline::deliver::{self, Delivery, Onward, RecordGuard, Settled};
use crate::pipeline::{Pipeline, Sampling};

/// An upstream's whole (non-stream) answer body must arrive within this.
const UPSTREAM_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a relay needs besides the response itself.
#[derive(Clone)]
pub struct Relay {
    pub pipeline: Arc<Pipeline>,
    pub upstream: Arc<HttpUpstream>,
    /// `None` in the stateless modern era.
    pub session: Option<Arc<HttpSession>>,
    pub max: usize,
    /// Response signing on the way to the client.
    pub egress: Egress,
    /// The proxy's own answers to the refused elements of a client's batch: they go to the
    /// client first, in the same answer (every request gets exactly one response).
    pub first: Option<Bytes>,
}

impl Relay {
    /// Turn the upstream's response into ours. `stream_slot` is run when an SSE stream starts
    /// (it takes a stream slot and returns the hook that gives it back); `None` from it refuses.
    pub async fn respond(
        &self,
        resp: Response<Incoming>,
        stream_slot: impl FnOnce() -> Option<Box<dyn FnOnce() + Send>>,
    ) -> Response<OutBody> {
        let status = resp.status();
        let ctype = status::content_type(resp.headers());
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return match self.first {
                // Nothing of the upstream's to add: the proxy's own answers alone.
                Some(_) => self.json(StatusCode::OK, Bytes::new()),
                None => status::empty(status),
            };
        }
        if status.is_success() && ctype.starts_with(EVENT_STREAM) {
            let Some(release) = stream_slot() else {
                return status::text(StatusCode::SERVICE_UNAVAILABLE, "too many open streams");
            };
            let (tx, rx) = mpsc::channel(super::routes::STREAM_BUFFER);
            if let Some(first) = &self.first {
                // The channel is new and empty: this cannot be full.
                let _ = tx.try_send(super::sse::message(first));
            }
            let relay = self.clone();
            tokio::spawn(async move { relay.pump(resp.into_body(), tx).await });
            let mut r = Response::new(OutBody::channel(rx, true).on_drop(release));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
            return r;
        }
        let body = match body::read_capped(resp.into_body(), self.max, UPSTREAM_BODY_TIMEOUT).await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("upstream body: {e:?}");
                return status::text(StatusCode::BAD_GATEWAY, "upstream answer unreadable");
            }
        };
        if body.is_empty() {
            // Nothing to inspect, but the client still gets a JSON-RPC error saying why.
            let why = format!("the upstream answered HTTP {status} with no message");
            let audit_id = self.audit_status(status, body.len(), &why);
            return self.replaced(status, why, &audit_id);
        }
        // Every body that reaches the client is inspected, whatever its status or type: a
        // JSON-RPC body goes through `from_server` like a 200; anything else (an HTML error
        // page, plain text) is dropped there as not JSON-RPC and replaced by our own error.
        let (out, audit_id) = self.verdict(body.clone()).await;
        match out {
            Some(out) => self.json(status, if out.is_empty() { body } else { out }),
            // The message was withheld: the client must not wait for it forever.
            None => {
                let why = format!(
                    "the upstream's answer (HTTP {status}) was withheld: not a JSON-RPC message for this request, or refused by policy"
                );
                self.replaced(status, why, &audit_id)
            }
        }
    }

    /// A whole JSON answer, with the proxy's own answers (`first`) joined in front: one batch.
    fn json(&self, status: StatusCode, body: Bytes) -> Response<OutBody> {
        match &self.first {
            Some(first) => status::json(status, status::join_json(&[first, &body])),
            None => status::json(status, body),
        }
    }

    /// Audit an upstream answer that carried no message (one record, as for every message).
    fn audit_status(&self, status: StatusCode, bytes: usize, why: &str) -> String {
        let p = &self.pipeline;
        let sid = p.session_id();
        let mut record = Record::new(&sid, &p.server, Direction::ServerToClient, bytes as u64);
        record.audit_id = p.audit().next_audit_id(&sid);
        record.event = "upstream.http_status".into();
        record.reason = Some(why.to_owned());
        record.code = Some(i64::from(status.as_u16()));
        let audit_id = record.audit_id.clone();
        p.finish(record, Instant::now());
        audit_id
    }

    /// The proxy's -32603 in place of an upstream answer that cannot be passed on. An error
    /// status stays (a 404 still tells the client its session is gone); a success that carried
    /// nothing passable becomes 502.
    fn replaced(&self, status: StatusCode, why: String, audit_id: &str) -> Response<OutBody> {
        let status = if status.is_success() {
            StatusCode::BAD_GATEWAY
        } else {
            status
        };
        let body = Rejection::new(INTERNAL_ERROR, "upstream.http_status", "upstream", why)
            .from(Source::Upstream)
            .to_response(None, audit_id);
        self.json(status, Bytes::from(body))
    }

    /// Judge one server message and act on the verdict (`pipeline::deliver`, on the blocking
    /// pool: a listing updates the pin store, a hold is waited out). `Some(empty)`: forward the
    /// original; `Some(bytes)`: the rewritten (or signed) message; `None`: nothing goes to the
    /// client. Also the message's audit id. `original` is the message as the upstream sent it.
    async fn verdict(&self, original: Bytes) -> (Option<Bytes>, String) {
        let (out, audit_id) = self.judged(original.clone()).await;
        let Some(out) = out else {
            return (None, audit_id);
        };
        let last = if out.is_empty() {
            &original[..]
        } else {
            &out[..]
        };
        let out = match self.egress.finish(last) {
            Some(signed) => Bytes::from(signed),
            None => out,
        };
        (Some(out), audit_id)
    }

    /// `verdict` before signing: `Some(empty)`: forward the original; `Some(bytes)`: the
    /// rewritten message; `None`: nothing goes to the client.
    pub(super) async fn judged(&self, original: Bytes) -> (Option<Bytes>, String) {
        // Judged here when that cannot block (most messages), else on the blocking pool.
        let started = Instant::now();
        let settled = match self.pipeline.from_server_inline(&original) {
            Some(outcome) => {
                let settled = deliver::settle_async(&self.pipeline, outcome, started).await;
                deliver::wait_off_workers(&self.pipeline, settled).await
            }
            None => {
                deliver::settle_off_workers(&self.pipeline, move |p| p.from_server(&original)).await
            }
        };
        let Delivery {
            onward,
            back,
            record,
            ..
        } = match settled {
            Settled::Act(d) => d,
            // Hook (issue 12): a modern `input_required` the backend fulfils; the retried
            // call's answer takes its place for the client (`retry.rs`).
            Settled::Sample(job, record) if job.retries() => {
                let audit_id = record.audit_id().to_owned();
                return (super::retry::fulfil(self, *job, record).await, audit_id);
            }
            Settled::Sample(job, record) => {
                let audit_id = record.audit_id().to_owned();
                self.sample(job, record);
                return (None, audit_id);
            }
            // `settle_off_workers` waits holds out itself.
            Settled::Hold(_) => return (None, String::new()),
        };
        let audit_id = record.audit_id().to_owned();
        if let Some(answer) = back {
            self.answer_upstream(answer);
        }
        let out = match onward {
            None => return (None, audit_id),
            Some(Onward::Original) => Bytes::new(),
            Some(Onward::Bytes(b)) => Bytes::from(b),
        };
        (Some(out), audit_id)
    }

    /// A server's sampling request answered by the inference backend on a task of its own: the
    /// rest of this stream keeps flowing, and the answer (and the request's one record) does
    /// not depend on the client staying. It goes upstream like any answer to the server.
    fn sample(&self, job: Box<Sampling>, record: RecordGuard) {
        let relay = self.clone();
        tokio::spawn(async move {
            let p = relay.pipeline.clone();
            let ran = tokio::task::spawn_blocking(move || deliver::run_sample(&p, *job, record));
            let Ok((outcome, started)) = ran.await else {
                return;
            };
            if let Settled::Act(d) = deliver::settle(&relay.pipeline, outcome, started) {
                if let Some(answer) = d.back {
                    relay.answer_upstream(answer);
                }
            }
        });
    }

    /// The proxy answers a server request itself (e.g. a refused elicitation): POST it upstream.
    fn answer_upstream(&self, bytes: Vec<u8>) {
        let (upstream, session) = (self.upstream.clone(), self.session.clone());
        tokio::spawn(async move {
            let mut headers = HeaderMap::new();
            let sid = session.as_ref().and_then(|s| s.upstream_id());
            if let Some(v) = session
                .as_ref()
                .and_then(|s| s.version.lock().unwrap_or_else(|p| p.into_inner()).clone())
            {
                headers.insert(HeaderName::from_static("mcp-protocol-version"), v);
            }
            if let Err(e) = upstream
                .send(Method::POST, &headers, sid.as_deref(), Bytes::from(bytes))
                .await
            {
                tracing::warn!("answering the upstream: {e}");
            }
        });
    }

    /// Copy an upstream SSE stream to the client event by event.
    async fn pump(self, mut body: Incoming, tx: mpsc::Sender<Bytes>) {
        let mut parser = sse::Parser::new(self.max);
        loop {
            let frame = tokio::select! {
                // Client gone: returning drops the upstream body, which closes that stream
                // (how a disconnect reaches the upstream).
                _ = tx.closed() => return,
                f = body.frame() => f,
            };
            let data = match frame {
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Some(Err(e)) => {
                    tracing::debug!("upstream stream: {e}");
                    return;
                }
                None => return,
            };
            let Ok(events) = parser.push(&data) else {
                tracing::warn!("upstream SSE event over the size limit: stream closed");
                return;
            };
            for ev in events {
                let Some(chunk) = self.event(ev).await else {
                    continue;
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        }
    }

    async fn event(&self, ev: Event) -> Option<Bytes> {
        let data = ev.data.as_deref().unwrap_or(b"");
        if data.iter().all(u8::is_ascii_whitespace) {
            // Priming and retry-only events carry no message: nothing to inspect.
            return Some(ev.encode(None));
        }
        let (out, _) = self.verdict(Bytes::copy_from_slice(data)).await;
        match out {
            Some(b) if b.is_empty() => Some(ev.encode(None)),
            Some(b) => Some(ev.encode(Some(&b))),
            None => ev.id.as_ref().map(|id| {
                Event {
                    id: Some(id.clone()),
                    ..Event::default()
                }
                .encode(None)
            }),
        }
    }
}

/// The upstream's session id header from an `initialize` answer.
pub fn upstream_session_id(resp: &Response<Incoming>) -> Option<String> {
    resp.headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
