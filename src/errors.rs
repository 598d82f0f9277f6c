//! Every refusal the proxy makes, and the one function that turns it into a JSON-RPC error.
//!
//! A `Rejection` says what happened (code, audit event, rule, reason) and whose fault it was;
//! `to_response` is the only place that writes an error body, so every error carries
//! `data: {rule, reason, audit_id}` the same way.

use serde_json::{json, Map, Value};

use crate::codec::strict_json::StrictError;
use crate::codec::Id;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const SIGNATURE_INVALID: i64 = -32010;
pub const TIMESTAMP_OUTSIDE_WINDOW: i64 = -32011;
pub const REPLAYED_NONCE: i64 = -32012;
pub const POLICY_DENIED: i64 = -32013;
pub const APPROVAL_FAILED: i64 = -32014;
pub const TOOL_HELD_BACK: i64 = -32015;
pub const RATE_LIMITED: i64 = -32016;
pub const TRUST_TOO_LOW: i64 = -32017;
/// MCP's own codes (schema 2026-07-28), which the proxy also answers with at the HTTP edge.
pub const HEADER_MISMATCH: i64 = -32020;
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Whose fault a refusal was; carried into the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client (downstream) sent something we refuse.
    Downstream,
    /// The server (upstream) did.
    Upstream,
    /// We failed (I/O, internal limits); fail closed.
    Internal,
}

impl Source {
    /// The audit record's `fault`.
    pub fn label(self) -> &'static str {
        match self {
            Source::Downstream => "downstream",
            Source::Upstream => "upstream",
            Source::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rejection {
    pub code: i64,
    /// Audit event name, e.g. `rpc.duplicate_key`.
    pub event: &'static str,
    /// `data.rule`: which check refused.
    pub rule: String,
    /// `data.reason`: what a person can do about it.
    pub reason: String,
    /// Raise an alert (security-relevant, not just malformed).
    pub alert: bool,
    pub source: Source,
    /// The id to answer, when the refusal happened before an envelope existed.
    pub id: Option<Id>,
    /// Overrides the generic error message (e.g. "Unknown tool: x", which must read exactly like
    /// the server's own error so hidden tools are not revealed).
    pub message: Option<String>,
    /// Extra members of `data` (e.g. `retry_after_ms`, `score`, `threshold`).
    pub extra: Map<String, Value>,
}

impl Rejection {
    pub fn new(
        code: i64,
        event: &'static str,
        rule: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Rejection {
            code,
            event,
            rule: rule.into(),
            reason: reason.into(),
            alert: false,
            source: Source::Downstream,
            id: None,
            message: None,
            extra: Map::new(),
        }
    }

    pub fn alert(mut self) -> Self {
        self.alert = true;
        self
    }

    pub fn from(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    pub fn oversize(seen: u64, limit: usize) -> Self {
        Rejection::new(
            INVALID_REQUEST,
            "frame.oversize",
            "max_message_bytes",
            format!("message of {seen} bytes exceeds the limit of {limit} bytes (proxy.max_message_bytes); it was discarded"),
        )
        .alert()
    }

    pub fn from_strict(e: StrictError) -> Self {
        let reason = e.to_string();
        // The short reason goes into `message` too: clients often show only that.
        let (mut r, short) = match &e {
            StrictError::InvalidUtf8 => (
                Rejection::new(PARSE_ERROR, "parse.invalid_utf8", "utf8", reason).alert(),
                "Parse error: invalid UTF-8".to_owned(),
            ),
            StrictError::Syntax(_) => (
                Rejection::new(PARSE_ERROR, "parse.syntax", "json", reason),
                "Parse error: invalid JSON".to_owned(),
            ),
            StrictError::TrailingData => (
                Rejection::new(
                    PARSE_ERROR,
                    "frame.trailing_data",
                    "one_value_per_line",
                    reason,
                )
                .alert(),
                "Parse error: more than one JSON value on one line".to_owned(),
            ),
            StrictError::TooDeep { limit } => (
                Rejection::new(PARSE_ERROR, "parse.depth_exceeded", "max_depth", reason),
                format!("Parse error: nested deeper than {limit} levels"),
            ),
            StrictError::DuplicateKey(_) => (
                Rejection::new(
                    INVALID_REQUEST,
                    "rpc.duplicate_key",
                    "duplicate_key",
                    reason,
                )
                .alert(),
                "Invalid Request: duplicate object key".to_owned(),
            ),
            StrictError::TooManyKeys { limit } => (
                Rejection::new(
                    INVALID_REQUEST,
                    "parse.too_many_keys",
                    "max_keys_per_object",
                    reason,
                )
                .alert(),
                format!("Invalid Request: more than {limit} keys in one object"),
            ),
        };
        r.message = Some(short);
        r
    }

    pub fn invalid_envelope(reason: &str, id: Option<Id>) -> Self {
        let mut r = Rejection::new(
            INVALID_REQUEST,
            "rpc.invalid_envelope",
            "jsonrpc_envelope",
            reason,
        );
        r.id = id;
        r
    }

    /// The generic JSON-RPC message for a code, as the SDKs print it.
    fn default_message(&self) -> &'static str {
        match self.code {
            PARSE_ERROR => "Parse error",
            INVALID_REQUEST => "Invalid Request",
            METHOD_NOT_FOUND => "Method not found",
            INVALID_PARAMS => "Invalid params",
            SIGNATURE_INVALID => "Signature missing or invalid",
            TIMESTAMP_OUTSIDE_WINDOW => "Timestamp outside the allowed window",
            REPLAYED_NONCE => "Replayed request",
            POLICY_DENIED => "Denied by policy",
            APPROVAL_FAILED => "Approval required",
            TOOL_HELD_BACK => "Tool held back: its definition changed since it was approved",
            RATE_LIMITED => "Rate limited",
            TRUST_TOO_LOW => "Server trust too low for this tool",
            HEADER_MISMATCH => "Header mismatch",
            MISSING_REQUIRED_CLIENT_CAPABILITY => "Missing required client capability",
            UNSUPPORTED_PROTOCOL_VERSION => "Unsupported protocol version",
            _ => "Internal error",
        }
    }

    /// The JSON-RPC error response for this rejection, one line without the newline.
    pub fn to_response(&self, id: Option<&Id>, audit_id: &str) -> Vec<u8> {
        let mut data = Map::new();
        data.insert("rule".into(), Value::String(self.rule.clone()));
        data.insert("reason".into(), Value::String(self.reason.clone()));
        data.insert("audit_id".into(), Value::String(audit_id.to_owned()));
        for (k, v) in &self.extra {
            data.insert(k.clone(), v.clone());
        }
        let id_json = id
            .or(self.id.as_ref())
            .map_or_else(|| "null".to_owned(), Id::to_json);
        // Many clients show only `message`, never `data`: it carries the short reason too.
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| short_message(self.default_message(), &self.reason));
        let error = json!({"code": self.code, "message": message, "data": Value::Object(data)});
        // Spliced by hand so the id is echoed exactly as received (big integers stay exact).
        format!(r#"{{"jsonrpc":"2.0","id":{id_json},"error":{error}}}"#).into_bytes()
    }
}

/// `"Denied by policy: path outside the allowed roots"`: the generic text for the code, then
/// the reason, cut at a readable length on a character boundary.
fn short_message(generic: &str, reason: &str) -> String {
    const MAX: usize = 200;
    let reason = reason.trim();
    if reason.is_empty() {
        return generic.to_owned();
    }
    let mut cut = reason.len().min(MAX);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let ellipsis = if cut < reason.len() { "…" } else { "" };
    format!("{generic}: {}{ellipsis}", &reason[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// -32022 read "Internal error": every code the proxy answers with has its own message.
    #[test]
    fn mcp_codes_have_their_own_messages() {
        for (code, want) in [
            (UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version"),
            (HEADER_MISMATCH, "Header mismatch"),
            (
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                "Missing required client capability",
            ),
        ] {
            let body = Rejection::new(code, "e", "r", "why").to_response(None, "a-1");
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], code);
            assert_eq!(v["error"]["message"], format!("{want}: why"));
            assert_eq!(v["error"]["data"]["reason"], "why");
        }
    }

    #[test]
    fn key_cap_refusal_names_the_cap_and_the_config_key() {
        let r = Rejection::from_strict(StrictError::TooManyKeys { limit: 4096 });
        assert_eq!(r.code, INVALID_REQUEST);
        assert_eq!(r.rule, "max_keys_per_object");
        assert!(r.reason.contains("4096") && r.reason.contains("proxy.max_keys_per_object"));
        let v: Value = serde_json::from_slice(&r.to_response(None, "a-1")).unwrap();
        assert_eq!(
            v["error"]["message"],
            "Invalid Request: more than 4096 keys in one object"
        );
    }
}
