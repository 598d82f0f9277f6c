//! `serve`, legacy era: a held call asked through the client (issue 11, SPEC §6). Streamable
//! HTTP gives the proxy no channel of its own to the client but the call's POST response, so
//! that response becomes an event stream: the proxy's `elicitation/create` first, then — once
//! the human answered (a new POST on the session carrying a response to the proxy's id, which
//! the pipeline consumes and answers 202) — the call's own answer: the server's result when
//! approved, else the -32014 the pipeline wrote. The stream closing before the answer is the
//! client gone for this call (`Pipeline::ask_stream_closed`). The wait and its outcomes are the
//! pipeline's (`client_ask.rs`, `hold.rs`), the same as `wrap`'s.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::HeaderMap;
use hyper::Response;
use tokio::sync::mpsc;

use super::body::OutBody;
use super::post;
use super::session::Session;
use super::sse::Event;
use super::status::{accepts_sse, sse_response};
use super::Shared;
use crate::errors::{Rejection, Source, INTERNAL_ERROR};
use crate::pipeline::deliver::{self, Settled};
use crate::pipeline::Held;

/// Events the stream holds before the client reads: the ask, a cancel, the answer.
const BUFFER: usize = 8;

/// A hold to ask through the client (`Ok`; its record is written), or anything else settled,
/// untouched (`Err`).
pub fn take(settled: Settled) -> Result<Box<Held>, Settled> {
    match settled {
        Settled::Hold(held) if held.ask.is_some() => Ok(held),
        other => Err(other),
    }
}

/// Answer the held call's POST with an event stream carrying the ask, then the call's answer.
pub async fn respond(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    headers: &HeaderMap,
    body: Bytes,
    held: Held,
) -> Response<OutBody> {
    let p = session.pipeline.clone();
    let (tx, rx) = mpsc::channel(BUFFER);
    let slot = accepts_sse(headers).then(|| shared.stream_slot()).flatten();
    let (shared, session, headers) = (shared.clone(), session.clone(), headers.clone());
    let Some(release) = slot else {
        // Nowhere to send the question: the hold ends at once, fail closed, on a plain answer.
        let why = if accepts_sse(&headers) {
            "no event stream is free to ask the client (too many open streams)"
        } else {
            "the request did not accept text/event-stream, so the proxy could not ask the client"
        };
        let q = p.clone();
        let settled = tokio::task::spawn_blocking(move || {
            let outcome = q.ask_unsendable(held, why);
            deliver::settle(&q, outcome, Instant::now())
        })
        .await;
        let Ok(settled) = settled else {
            return super::status::empty(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        };
        let settled = deliver::wait_off_workers(&p, settled).await;
        return post::act(&shared, &session, &headers, body, settled)
            .await
            .0;
    };
    if let Some(ask) = &held.ask {
        let _ = tx.try_send(event(ask));
    }
    let (ticket, id) = (held.ticket.clone(), held.id.clone());
    tokio::spawn(async move {
        let waiter = p.clone();
        let mut wait = tokio::task::spawn_blocking(move || {
            let waited = deliver::wait_hold(&waiter, held);
            let settled = deliver::settle(&waiter, waited.outcome, Instant::now());
            (settled, waited.withdraw)
        });
        let waited = tokio::select! {
            w = &mut wait => w,
            () = tx.closed() => {
                p.ask_stream_closed(&ticket);
                wait.await
            }
        };
        let Ok((settled, cancel)) = waited else {
            tracing::error!("the approval wait failed; the call was not forwarded");
            return;
        };
        // The dialog the client may still show is closed (timeout, cancel).
        if let Some(c) = cancel {
            let _ = tx.send(event(&c)).await;
        }
        let settled = deliver::wait_off_workers(&p, settled).await;
        let (resp, _) = post::act(&shared, &session, &headers, body, settled).await;
        pipe(resp, &tx, &id).await;
    });
    sse_response(OutBody::channel(rx, true).on_drop(release))
}

fn event(data: &[u8]) -> Bytes {
    Event {
        event: Some("message".into()),
        data: Some(data.to_vec()),
        ..Event::default()
    }
    .encode(None)
}

/// Copy the call's answer onto the ask's stream: an event stream as it comes, a JSON body as
/// one event, anything else (a transport error's text) as the proxy's -32603 for the call.
async fn pipe(resp: Response<OutBody>, tx: &mpsc::Sender<Bytes>, id: &crate::codec::Id) {
    let streamed = super::status::is_event_stream(resp.headers());
    let mut body = resp.into_body();
    if streamed {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                if tx.send(data).await.is_err() {
                    return;
                }
            }
        }
        return;
    }
    let Ok(collected) = body.collect().await;
    let bytes = collected.to_bytes();
    if bytes.is_empty() {
        return;
    }
    let data = if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() {
        bytes.to_vec()
    } else {
        Rejection::new(
            INTERNAL_ERROR,
            "upstream.unavailable",
            "upstream",
            String::from_utf8_lossy(&bytes).into_owned(),
        )
        .from(Source::Upstream)
        .to_response(Some(id), "")
    };
    let _ = tx.send(event(&data)).await;
}
