//! `serve` with an HTTP upstream (issue 12): a modern `input_required` answer whose sampling
//! input requests the inference backend fulfils (`pipeline/sampling_retry.rs`). The pipeline
//! builds the retried request (the client's call with `inputResponses` and the server's
//! `requestState`); here it is POSTed upstream like the original, with the modern routing
//! headers it needs (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`), and the upstream's
//! answer — a JSON body or an event stream — is judged by the same pipeline, message by
//! message. The answer to the client's request is what the client gets in place of the
//! `input_required`; the retry's own notifications are judged and audited, not relayed (the
//! client's stream carries one answer for the one request it sent).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Method;
use serde_json::Value;

use super::body;
use super::relay::Relay;
use super::sse;
use crate::audit::{Decision, Direction, Record};
use crate::errors::{Rejection, Source, INTERNAL_ERROR};
use crate::pipeline::deliver::{self, Delivery, Onward, RecordGuard, Settled};
use crate::pipeline::Sampling;

/// A retried call's whole answer must arrive within this (the server's own work; the backend's
/// time was spent before the retry).
const RETRY_ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Fulfil `job` from the backend, retry the call upstream, and return the answer for the
/// client (`None`: nothing goes to the client — the session ended, or it was withheld).
pub async fn fulfil(relay: &Relay, job: Sampling, record: RecordGuard) -> Option<Bytes> {
    let p = relay.pipeline.clone();
    let id = job.id.clone();
    let (outcome, started) =
        tokio::task::spawn_blocking(move || deliver::run_sample(&p, job, record))
            .await
            .ok()?;
    let Settled::Act(Delivery { onward, back, .. }) =
        deliver::settle(&relay.pipeline, outcome, started)
    else {
        return None;
    };
    let retried = match (back, onward) {
        (Some(bytes), _) => bytes,
        // The backend failed or a limit refused: the error for the client's request.
        (None, Some(Onward::Bytes(error))) => return Some(Bytes::from(error)),
        _ => return None,
    };
    let headers = routing_headers(&retried);
    let sid = relay.session.as_ref().and_then(|s| s.upstream_id());
    // The client's request ends with the proxy's -32603, in one audit record of its own.
    let failed = |why: String| {
        let r = Rejection::new(INTERNAL_ERROR, "upstream.retry_failed", "upstream", why)
            .from(Source::Upstream);
        let p = &relay.pipeline;
        let sid = p.session_id();
        let mut record = Record::new(&sid, &p.server, Direction::ServerToClient, 0);
        record.audit_id = p.audit().next_audit_id(&sid);
        record.id = Some(id.to_string());
        let answer = r.to_response(Some(&id), &record.audit_id);
        record.decision = Decision::Error;
        record.event = r.event.to_owned();
        record.rule = Some(r.rule.clone());
        record.reason = Some(r.reason.clone());
        record.code = Some(r.code);
        p.finish(record, Instant::now());
        Some(Bytes::from(answer))
    };
    let resp = match relay
        .upstream
        .send(Method::POST, &headers, sid.as_deref(), Bytes::from(retried))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return failed(format!(
                "the retried call could not reach the upstream: {e}"
            ))
        }
    };
    let streamed = super::status::is_event_stream(resp.headers());
    let want: Value = serde_json::from_str(&id.to_json()).unwrap_or(Value::Null);
    let mut body = resp.into_body();
    if !streamed {
        let Ok(bytes) = body::read_capped(body, relay.max, RETRY_ANSWER_TIMEOUT).await else {
            return failed("the upstream's answer to the retried call was unreadable".into());
        };
        return judge(relay, &bytes, &want).await;
    }
    let mut parser = sse::Parser::new(relay.max);
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let Ok(events) = parser.push(&data) else {
                return None;
            };
            for ev in events {
                let Some(data) = ev.data.filter(|d| !d.iter().all(u8::is_ascii_whitespace)) else {
                    continue;
                };
                if let Some(answer) = judge(relay, &data, &want).await {
                    return Some(answer);
                }
            }
        }
        None
    };
    match tokio::time::timeout(RETRY_ANSWER_TIMEOUT, read).await {
        Ok(Some(answer)) => Some(answer),
        _ => failed("the upstream ended the retried call's stream without answering it".into()),
    }
}

/// One message of the retry's answer through `from_server`: `Some` when it is the answer to
/// the client's request (as judged: forwarded, rewritten or an error), `None` otherwise.
async fn judge(relay: &Relay, message: &[u8], want: &Value) -> Option<Bytes> {
    let answers = serde_json::from_slice::<Value>(message)
        .is_ok_and(|v| v.get("method").is_none() && v.get("id") == Some(want));
    // Boxed: the retry's answer may itself be another `input_required` to fulfil.
    let (out, _) = Box::pin(relay.judged(Bytes::copy_from_slice(message))).await;
    match out {
        Some(b) if answers && b.is_empty() => Some(Bytes::copy_from_slice(message)),
        Some(b) if answers => Some(b),
        _ => None,
    }
}

/// The modern routing headers of the retried request, mirrored from its body (the upstream,
/// like the proxy, requires them to match), and its protocol version from `_meta`.
fn routing_headers(request: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    let Ok(v) = serde_json::from_slice::<Value>(request) else {
        return h;
    };
    let mut put = |name: &'static str, value: Option<&str>| {
        if let Some(value) = value {
            let value = if value.is_ascii() && !value.chars().any(char::is_control) {
                value.to_owned()
            } else {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(value);
                format!("=?base64?{b64}?=")
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static(name), value);
            }
        }
    };
    let params = v.get("params");
    put("mcp-method", v.get("method").and_then(Value::as_str));
    put(
        "mcp-name",
        params
            .and_then(|p| p.get("name").or_else(|| p.get("uri")))
            .and_then(Value::as_str),
    );
    put(
        "mcp-protocol-version",
        params
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
            .and_then(Value::as_str),
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_headers_mirror_the_retried_request() {
        let req = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"summarize","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"requestState":"s"}}"#;
        let h = routing_headers(req);
        assert_eq!(h["mcp-method"], "tools/call");
        assert_eq!(h["mcp-name"], "summarize");
        assert_eq!(h["mcp-protocol-version"], "2026-07-28");
        let other =
            r#"{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"file:///é"}}"#;
        let h = routing_headers(other.as_bytes());
        assert_eq!(h["mcp-name"], "=?base64?ZmlsZTovLy/DqQ==?=");
        assert!(h.get("mcp-protocol-version").is_none());
    }
}
