//! The modern era's process per request (2026-07-28, a stdio server): a process of the request's
//! own from the pool, which first answers the proxy's listing when the call comes before any
//! (`prefetch`), then takes the request (`answer`); every message it sends goes on the request's
//! stream until its response. A client that leaves before the answer cancels the request
//! upstream (`notifications/cancelled`) before the process's stdin closes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hyper::{Response, StatusCode};

use super::body::OutBody;
use super::pool::Pool;
use super::post::Judged;
use super::signer::Egress;
use super::slots::Slot;
use super::status::{self, accepts_sse, collect_json, sse_response};
use super::stdio_upstream::StdioSession;
use super::upstream::{Exchange, Stateless};
use super::{Route, Shared};
use crate::audit::{Decision, Direction, Record};
use crate::codec::{self, Id};
use crate::pipeline::Pipeline;

/// A call before any listing: the request's own process answers the proxy's listing first (its
/// answer consumed and pinned by `from_server`). Returns that process, to take the call.
pub async fn prefetch(
    shared: &Shared,
    route: &Route,
    pool: &Arc<Pool>,
    p: &Arc<Pipeline>,
    body: &[u8],
) -> Option<Arc<StdioSession>> {
    let request = p.prefetch_request(body)?;
    let s = StdioSession::spawn(pool, p, Egress::of(route), shared.grace, || {})
        .await
        .ok()?;
    if s.send(&request).is_ok() {
        let waiting = p.clone();
        let _ = tokio::task::spawn_blocking(move || {
            waiting.await_prefetch(crate::pipeline::PREFETCH_WAIT)
        })
        .await;
    }
    Some(s)
}

/// Send the judged request to its process (`early`, or a fresh one) and answer on its stream.
pub async fn answer(
    x: &Exchange<'_>,
    pool: &Arc<Pool>,
    judged: Judged,
    ready: Stateless,
) -> Response<OutBody> {
    let Exchange {
        shared,
        route,
        pipeline: p,
        headers,
    } = *x;
    let Stateless {
        early,
        slot: process_slot,
    } = ready;
    let Judged { forward, asked, .. } = judged;
    if asked.is_empty() {
        // A notification to a stateless server: no process would outlive it.
        return status::empty(StatusCode::ACCEPTED);
    }
    let s = match early {
        Some(s) => s,
        None => match StdioSession::spawn(pool, p, Egress::of(route), shared.grace, || {}).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot start {:?}: {e}", pool.argv().join(" "));
                return status::text(StatusCode::BAD_GATEWAY, "cannot start the server");
            }
        },
    };
    let slot = accepts_sse(headers).then(|| shared.stream_slot()).flatten();
    let Some((rx, answered)) = s.routes.open_sole(p, &asked, slot.is_some()) else {
        s.close();
        return status::empty(StatusCode::ACCEPTED);
    };
    let _ = s.send(&forward.unwrap_or_default());
    let guard = Request {
        s,
        asked,
        answered,
        _slot: process_slot,
    };
    match slot {
        Some(release) => sse_response(
            OutBody::channel(rx, true)
                .on_drop(release)
                .on_drop(move || drop(guard)),
        ),
        None => {
            let r = collect_json(rx).await;
            drop(guard);
            r
        }
    }
}

/// One request's process. Dropped when the answer went out — or when the client went away
/// first: then the server is told `notifications/cancelled` before its stdin closes.
struct Request {
    s: Arc<StdioSession>,
    /// The requests it was sent (ids the pipeline let through).
    asked: Vec<Id>,
    answered: Arc<AtomicBool>,
    /// The client's cap slot, held while the process runs.
    _slot: Option<Slot<String>>,
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.answered.load(Ordering::Acquire) && self.s.is_alive() {
            for id in &self.asked {
                self.cancel(id);
            }
        }
        self.s.close();
    }
}

impl Request {
    fn cancel(&self, id: &Id) {
        let line = codec::facts::cancelled(id, "the HTTP client disconnected");
        let p = self.s.pipeline();
        let mut record = Record::new(
            &p.session_id(),
            &p.server,
            Direction::Proxy,
            line.len() as u64,
        );
        record.audit_id = p.audit().next_audit_id(&record.session);
        record.event = "http.client_disconnected".into();
        record.method = Some("notifications/cancelled".into());
        record.id = Some(id.to_string());
        record.decision = Decision::Allow;
        record.reason =
            Some("the client disconnected before the answer: request cancelled upstream".into());
        let _ = self.s.send(&line);
        p.finish(record, Instant::now());
    }
}
