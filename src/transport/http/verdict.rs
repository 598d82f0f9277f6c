//! A client message's verdict, settled: an approval hold waited out off the async threads,
//! the durable record written before anything moves, and the two shapes of an answer (one
//! JSON body, or an SSE stream).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::body::OutBody;
use super::message::Peek;
use super::status::{self, EVENT_STREAM};
use crate::codec::Kind;
use crate::pipeline::{Outcome, Pipeline, Verdict};

/// Bodies above this are parsed and judged on a blocking thread: the async workers that accept
/// connections must never sit in a long parse, or one large hostile body stalls everyone.
pub const OFFLOAD_BYTES: usize = 64 * 1024;

/// Run CPU work over a body of `len` bytes: inline when small, on the blocking pool when large.
pub async fn cpu<T: Send + 'static>(len: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    if len <= OFFLOAD_BYTES {
        return f();
    }
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        // The work panicked: the same as if it had panicked here.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The pipeline's verdict on a client message (its signature already checked: `checked`).
/// Hook (issue 13): the request's W3C trace context headers join its record when `_meta` had
/// none (`telemetry::traceparent::adopt_headers`).
pub async fn judge(
    p: &Arc<Pipeline>,
    body: &Bytes,
    checked: Option<crate::sig::outcome::Outcome>,
    headers: &HeaderMap,
) -> Outcome {
    let (p, b) = (p.clone(), body.clone());
    let mut outcome = cpu(body.len(), move || p.from_client_with(&b, checked.as_ref())).await;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    crate::telemetry::traceparent::adopt_headers(
        &mut outcome.record,
        header("traceparent"),
        header("tracestate"),
    );
    outcome
}

pub fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains(EVENT_STREAM)))
}

/// Wait out an approval hold off the async threads; other verdicts pass through.
pub async fn settle(pipeline: &Arc<Pipeline>, outcome: Outcome, started: Instant) -> Outcome {
    let Outcome { verdict, record } = outcome;
    let Verdict::Hold(held) = verdict else {
        return Outcome { verdict, record };
    };
    pipeline.finish(record, started);
    let (p, id) = (pipeline.clone(), held.id.clone());
    let waited = tokio::task::spawn_blocking(move || {
        let resolution = p.wait_for(&held);
        p.resolve_hold(*held, resolution)
    })
    .await;
    waited.unwrap_or_else(|_| {
        // The wait itself failed: nothing was approved, so the call fails closed.
        let r = crate::errors::Rejection::new(
            crate::errors::APPROVAL_FAILED,
            "approval.not_granted",
            "approval",
            "the approval wait failed; the call was not forwarded",
        );
        let mut record = crate::audit::Record::new(
            &pipeline.session_id(),
            &pipeline.server,
            crate::audit::Direction::ClientToServer,
            0,
        );
        record.event = r.event.into();
        Outcome {
            verdict: Verdict::Answer(r.to_response(Some(&id), "")),
            record,
        }
    })
}

/// Settle the record and say what moves: `(Some(bytes), answer)` forwards; `(None, Some)`
/// answers only; `None` does nothing (202). A durable record is on disk before anything moves.
pub fn decide(
    p: &Pipeline,
    outcome: Outcome,
    body: Bytes,
    started: Instant,
) -> Option<(Option<Bytes>, Option<Vec<u8>>)> {
    let Outcome { verdict, record } = outcome;
    let (forward, answer) = match verdict {
        Verdict::Forward => (Some(body), None),
        Verdict::Rewrite(b) => (Some(Bytes::from(b)), None),
        Verdict::Answer(a) => (None, Some(a)),
        Verdict::Split { forward, answer } => (Some(Bytes::from(forward)), Some(answer)),
        Verdict::Drop | Verdict::Hold(_) | Verdict::Sample(_) => (None, None),
    };
    if forward.is_some() && record.durable {
        let id = record.id.clone();
        if let Err(e) = p.finish_durable(record, started) {
            // Fail closed: no durable record, no high-risk call.
            tracing::error!("audit write failed, refusing the call: {e}");
            let refusal = p.audit_failure_answer(id.as_deref());
            return Some((None, Some(refusal.unwrap_or_default())));
        }
    } else {
        p.finish(record, started);
    }
    if forward.is_none() && answer.is_none() {
        return None;
    }
    Some((forward, answer))
}

pub fn has_requests(peeks: &[Peek]) -> bool {
    peeks.iter().any(|p| p.kind == Kind::Request)
}

pub fn sse_response(body: OutBody) -> Response<OutBody> {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    r
}

/// A JSON answer: the one response, or a batch's responses as one array.
pub async fn collect_json(mut rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response<OutBody> {
    let mut parts = Vec::new();
    while let Some(chunk) = rx.recv().await {
        parts.push(chunk);
    }
    match parts.len() {
        0 => status::text(
            StatusCode::BAD_GATEWAY,
            "the server ended without answering",
        ),
        1 => status::json(StatusCode::OK, parts.remove(0)),
        _ => {
            let items: Vec<&[u8]> = parts
                .iter()
                .map(|p| {
                    let t = p.trim_ascii();
                    t.strip_prefix(b"[")
                        .and_then(|t| t.strip_suffix(b"]"))
                        .unwrap_or(t)
                })
                .collect();
            let mut out = b"[".to_vec();
            out.extend(items.join(&b","[..]));
            out.push(b']');
            status::json(StatusCode::OK, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large body's parse runs on the blocking pool, not on the worker that accepts
    /// connections; a small one stays inline (a thread hop would cost more than the parse).
    #[tokio::test(flavor = "current_thread")]
    async fn large_bodies_are_judged_off_the_async_worker() {
        let worker = std::thread::current().id();
        let small = cpu(OFFLOAD_BYTES, || std::thread::current().id()).await;
        let large = cpu(OFFLOAD_BYTES + 1, || std::thread::current().id()).await;
        assert_eq!(small, worker);
        assert_ne!(large, worker);
    }
}
