//! A modern (2026-07-28) `tools/call` through an HTTP upstream, before the pins hold a tool
//! baseline for the call's variant (era + declared capabilities, `pins::variant`): a stateless
//! client may call tools it cached (`ttlMs`) or knows, without listing first. As `wrap` does
//! (`pipeline/prefetch.rs`), the proxy then lists the tools itself — its own id, never forwarded
//! (SPEC §2), with the call's own `_meta` so the server answers for the same client — pins what
//! the listing shows, and only then judges the call. Any failure leaves the call to be judged
//! without the listing (fail closed: a never-listed tool reads as unknown).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::Method;

use super::body::read_capped;
use super::http_upstream::HttpUpstream;
use super::sse;
use crate::pipeline::{Pipeline, Verdict};

/// A listing of more pages than this is not followed further (each page is one round trip).
const MAX_PAGES: usize = 32;

/// List the upstream's tools for `call`'s variant first, when the pins have none yet.
pub async fn before_call(
    p: &Arc<Pipeline>,
    up: &HttpUpstream,
    headers: &HeaderMap,
    call: &[u8],
    max: usize,
    timeout: Duration,
) {
    let mut next = p.prefetch_request(call);
    if next.is_none() {
        return;
    }
    let mut h = headers.clone();
    h.insert("mcp-method", HeaderValue::from_static("tools/list"));
    h.remove("mcp-name");
    // The call's `Mcp-Param-*` mirror its arguments; a listing has none.
    let params: Vec<_> = h
        .keys()
        .filter(|k| k.as_str().starts_with("mcp-param-"))
        .cloned()
        .collect();
    for k in params {
        h.remove(k);
    }
    for _ in 0..MAX_PAGES {
        let Some(request) = next.take() else { return };
        let started = Instant::now();
        let sent = tokio::time::timeout(timeout, up.send(Method::POST, &h, None, request.into()));
        let raw = match sent.await {
            Ok(Ok(resp)) => read_capped(resp.into_body(), max, timeout).await.ok(),
            Ok(Err(e)) => {
                tracing::warn!("the proxy's own tools/list: {e}");
                None
            }
            Err(_) => None,
        };
        let Some(raw) = raw else { return };
        for msg in messages(&raw, max) {
            let outcome = p.from_server(&msg);
            if let Verdict::Answer(b) = &outcome.verdict {
                next = Some(b.clone());
            }
            p.finish(outcome.record, started);
        }
    }
}

/// The JSON-RPC messages of an upstream answer: a JSON body, or the `data` of each SSE event.
fn messages(raw: &Bytes, max: usize) -> Vec<Vec<u8>> {
    let trimmed = raw.iter().position(|b| !b.is_ascii_whitespace());
    if trimmed.is_some_and(|i| raw[i] == b'{' || raw[i] == b'[') {
        return vec![raw.to_vec()];
    }
    let mut parser = sse::Parser::new(max);
    let mut events = parser.push(raw).unwrap_or_default();
    events.extend(parser.push(b"\n\n").unwrap_or_default());
    events.into_iter().filter_map(|e| e.data).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_and_sse_events_both_yield_their_messages() {
        let json = Bytes::from_static(b" {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
        assert_eq!(messages(&json, 1024).len(), 1);
        let sse = Bytes::from_static(
            b"event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n: keep-alive\n\n",
        );
        let m = messages(&sse, 1024);
        assert_eq!(m, vec![br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec()]);
        assert!(messages(&Bytes::from_static(b"<html>"), 1024).is_empty());
    }
}
