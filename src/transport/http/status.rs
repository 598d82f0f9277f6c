//! HTTP answers: the JSON-RPC error code → HTTP status table of SPEC §3, response builders, and
//! the audit record of a refusal made at the HTTP edge (before any pipeline saw the message).

use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::body::OutBody;
use super::Shared;
use crate::audit::{Decision, Direction, Record};
use crate::codec::Id;
use crate::errors::Rejection;

pub const JSON: &str = "application/json";
pub const EVENT_STREAM: &str = "text/event-stream";
pub const SESSION_HEADER: &str = "mcp-session-id";
/// 2026-07-28: the headers of a request do not match its body (schema `HEADER_MISMATCH`).
pub const HEADER_MISMATCH: i64 = -32020;

/// The status for a JSON-RPC error body the proxy answers with (SPEC §3). Errors a JSON-RPC
/// body describes fully (unknown tool, approval, drift, trust) keep 200 so clients read them as
/// ordinary JSON-RPC errors. Returns the status and a `Retry-After` in seconds when due.
pub fn for_error(body: &[u8]) -> (StatusCode, Option<u64>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::OK, None);
    };
    let err = &v["error"];
    let status = match err["code"].as_i64() {
        Some(-32700 | -32600) if err["data"]["rule"] == "max_message_bytes" => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        Some(-32700 | -32600 | HEADER_MISMATCH) => StatusCode::BAD_REQUEST,
        Some(-32012..=-32010) => StatusCode::UNAUTHORIZED,
        Some(-32013) => StatusCode::FORBIDDEN,
        Some(-32016) => {
            // Round up: a client retrying after the floor would be refused again.
            let ms = err["data"]["retry_after_ms"].as_u64().unwrap_or(1000);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                Some(ms.div_ceil(1000).max(1)),
            );
        }
        _ => StatusCode::OK,
    };
    (status, None)
}

/// A JSON body with a status.
pub fn json(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<OutBody> {
    let mut r = Response::new(OutBody::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

/// A JSON-RPC error the proxy answers with, under the status SPEC §3 gives its code.
pub fn error_answer(body: Vec<u8>) -> Response<OutBody> {
    let (status, retry) = for_error(&body);
    let mut r = json(status, body);
    if let Some(secs) = retry {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// A status with no body.
pub fn empty(status: StatusCode) -> Response<OutBody> {
    let mut r = Response::new(OutBody::empty());
    *r.status_mut() = status;
    r
}

/// Whether the client accepts an SSE answer.
/// An answer's media type, lowercased (media types compare case-insensitively): every reader of
/// an upstream's or a handler's answer decides between SSE and JSON on this one value.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Whether an answer is an event stream (see [`content_type`]).
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    content_type(headers).starts_with(EVENT_STREAM)
}

pub fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains(EVENT_STREAM)))
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
pub async fn collect_json(mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Response<OutBody> {
    let mut parts = Vec::new();
    while let Some(chunk) = rx.recv().await {
        parts.push(chunk);
    }
    match parts.len() {
        0 => text(
            StatusCode::BAD_GATEWAY,
            "the server ended without answering",
        ),
        1 => json(StatusCode::OK, parts.remove(0)),
        _ => {
            let parts: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
            json(StatusCode::OK, join_json(&parts))
        }
    }
}

/// JSON-RPC messages and batches (each part one or an array of them) as one batch.
pub fn join_json(parts: &[&[u8]]) -> Vec<u8> {
    let items: Vec<&[u8]> = parts
        .iter()
        .map(|p| {
            let t = p.trim_ascii();
            t.strip_prefix(b"[")
                .and_then(|t| t.strip_suffix(b"]"))
                .unwrap_or(t)
        })
        .filter(|t| !t.trim_ascii().is_empty())
        .collect();
    let mut out = b"[".to_vec();
    out.extend(items.join(&b","[..]));
    out.push(b']');
    out
}

/// Every SSE stream slot is taken: 503, come back later.
pub fn too_many_streams() -> Response<OutBody> {
    let mut r = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many open streams; retry later",
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// A plain-text explanation with a status (edge refusals: no JSON-RPC message to answer).
pub fn text(status: StatusCode, msg: &str) -> Response<OutBody> {
    let mut r = Response::new(OutBody::full(format!("{msg}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A refusal at the HTTP edge: what to audit and what to answer.
pub struct EdgeRefusal {
    pub status: StatusCode,
    pub event: &'static str,
    pub rule: &'static str,
    pub reason: String,
    pub alert: bool,
    /// The JSON-RPC code of the error body.
    pub code: i64,
    /// When to come back (429): `data.retry_after_ms` and `Retry-After`.
    pub retry_after_ms: Option<u64>,
    /// The key the request was proved by, for the record (who tried).
    pub kid: Option<String>,
    /// The refused message's id, when its body was read and the id is readable: a JSON-RPC
    /// error answers its request (id null only when nothing could be read).
    pub id: Option<Id>,
    /// Further `data` members the error's schema asks for (e.g. -32022's `supported`).
    pub extra: Vec<(&'static str, Value)>,
}

impl EdgeRefusal {
    pub fn new(
        status: StatusCode,
        event: &'static str,
        rule: &'static str,
        reason: String,
    ) -> Self {
        EdgeRefusal {
            status,
            event,
            rule,
            reason,
            alert: false,
            code: crate::errors::INVALID_REQUEST,
            retry_after_ms: None,
            kid: None,
            id: None,
            extra: Vec::new(),
        }
    }

    /// Answer the request in `body` by its id (any readable id; the body may be refused for
    /// being malformed in other ways).
    pub fn about(mut self, body: &[u8]) -> Self {
        self.id = crate::codec::facts(body).and_then(|p| p.id);
        self
    }

    pub fn with_data(mut self, key: &'static str, value: Value) -> Self {
        self.extra.push((key, value));
        self
    }

    pub fn kid(mut self, kid: Option<&str>) -> Self {
        self.kid = kid.map(str::to_owned);
        self
    }

    /// A client over one of its caps: 429 with -32016 and when to retry (SPEC §3).
    pub fn too_many(event: &'static str, rule: &'static str, reason: String, ms: u64) -> Self {
        let mut r = EdgeRefusal::new(StatusCode::TOO_MANY_REQUESTS, event, rule, reason)
            .code(crate::errors::RATE_LIMITED);
        r.retry_after_ms = Some(ms);
        r
    }

    pub fn code(mut self, code: i64) -> Self {
        self.code = code;
        self
    }

    pub fn alert(mut self) -> Self {
        self.alert = true;
        self
    }

    /// Write the refusal's audit record (one per refused request, like every message) and build
    /// the answer: a JSON-RPC error body (with the request's id when `about` read one), so SDK
    /// clients can show the reason.
    pub fn answer(
        self,
        shared: &Shared,
        server: &str,
        session: &str,
        bytes: u64,
    ) -> Response<OutBody> {
        let (status, retry) = (self.status, self.retry_after_ms);
        let body = self.audit(shared, server, session, bytes);
        let mut r = json(status, body);
        if let Some(ms) = retry {
            let secs = ms.div_ceil(1000).max(1);
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }

    /// Write the audit record and return the JSON-RPC error body (for answers written by hand,
    /// e.g. a 408 on a connection hyper has given up).
    pub fn audit(self, shared: &Shared, server: &str, session: &str, bytes: u64) -> Vec<u8> {
        let audit = &shared.audit;
        let mut record = Record::new(session, server, Direction::ClientToServer, bytes);
        record.audit_id = audit.next_audit_id(if session.is_empty() { "edge" } else { session });
        let mut rejection = Rejection::new(self.code, self.event, self.rule, self.reason.clone());
        rejection.alert = self.alert;
        if let Some(ms) = self.retry_after_ms {
            rejection = rejection.with_extra("retry_after_ms", ms.into());
        }
        for (key, value) in self.extra {
            rejection = rejection.with_extra(key, value);
        }
        if self.status == StatusCode::NOT_FOUND {
            // What SDK servers say, so clients recognise an expired session and start anew.
            rejection.message = Some("Session not found".into());
        }
        record.decision = Decision::Deny;
        record.event = self.event.to_owned();
        record.rule = Some(self.rule.to_owned());
        record.reason = Some(self.reason);
        record.code = Some(i64::from(self.status.as_u16()));
        record.alert = self.alert;
        record.kid = self.kid;
        record.fault = Some(rejection.source.label());
        let body = rejection.to_response(self.id.as_ref(), &record.audit_id);
        if let Some(m) = &shared.metrics {
            m.record(&record);
        }
        if let Err(e) = audit.write(record) {
            tracing::error!("audit write failed: {e}");
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stream_is_told_whatever_the_case_of_its_media_type() {
        let mut h = HeaderMap::new();
        assert!(!is_event_stream(&h), "no content type is not a stream");
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Text/Event-Stream; charset=utf-8"),
        );
        assert!(is_event_stream(&h));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("Application/JSON"));
        assert!(!is_event_stream(&h));
        assert!(content_type(&h).starts_with(JSON));
    }

    fn err(code: i64, data: &str) -> Vec<u8> {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"error":{{"code":{code},"message":"m","data":{data}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn spec_table() {
        let cases = [
            (-32700, StatusCode::BAD_REQUEST),
            (-32600, StatusCode::BAD_REQUEST),
            (-32010, StatusCode::UNAUTHORIZED),
            (-32011, StatusCode::UNAUTHORIZED),
            (-32012, StatusCode::UNAUTHORIZED),
            (-32013, StatusCode::FORBIDDEN),
            (-32020, StatusCode::BAD_REQUEST),
            (-32602, StatusCode::OK),
            (-32014, StatusCode::OK),
        ];
        for (code, status) in cases {
            assert_eq!(for_error(&err(code, "{}")).0, status, "{code}");
        }
        assert_eq!(
            for_error(&err(-32600, r#"{"rule":"max_message_bytes"}"#)).0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            for_error(&err(-32016, r#"{"retry_after_ms":1500}"#)),
            (StatusCode::TOO_MANY_REQUESTS, Some(2))
        );
    }
}
