//! One audit record: the decision the proxy took on one message, with the SPEC §8 fields.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client → proxy → server.
    ClientToServer,
    /// Server → proxy → client.
    ServerToClient,
    /// A message the proxy itself originated (approval prompts, re-listings).
    Proxy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    Hold,
    Redact,
    Rewrite,
    Error,
}

/// Filled along the message's way through the pipeline, written once when its handling ends.
/// `v`, `seq`, `ts` and `prev` are set by the writer.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub v: u32,
    pub seq: u64,
    pub ts: String,
    pub prev: String,
    pub event: String,
    pub audit_id: String,
    pub session: String,
    pub server: String,
    pub era: Option<&'static str>,
    pub direction: Direction,
    pub method: Option<String>,
    pub id: Option<String>,
    pub tool: Option<String>,
    pub decision: Decision,
    pub rule: Option<String>,
    pub reason: Option<String>,
    pub code: Option<i64>,
    pub latency_us: Option<u64>,
    pub kid: Option<String>,
    pub args_sha256: Option<String>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub alert: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// Free-form details for events that need them (drift diffs, checkpoint signatures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// The W3C `traceparent` a client request carried in `params._meta` (well-formed ones
    /// only): joins the record, and the proxy's span, to the client's trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The W3C `tracestate` that came with `traceparent` (well-formed, bounded): the trace state
    /// of the proxy's spans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// The protocol version the session negotiated (legacy) or the request named (modern), once
    /// known: `mcp.protocol.version` on the request's span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// A call's arguments, when `audit.log_arguments` asks for them (`redacted`: secrets
    /// replaced, `full`: as sent); the default (`digest`) keeps only `args_sha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Value>,
    /// Whose fault a refusal was (`Rejection::source`): `downstream` (the client sent it),
    /// `upstream` (the server did), `internal` (the proxy failed closed). Refusals only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
    /// High and critical calls: the record must be on disk before the call is forwarded.
    #[serde(skip)]
    pub durable: bool,
}

impl Record {
    pub fn new(session: &str, server: &str, direction: Direction, bytes: u64) -> Record {
        Record {
            v: 1,
            seq: 0,
            ts: String::new(),
            prev: String::new(),
            event: "message".into(),
            audit_id: String::new(),
            session: session.to_owned(),
            server: server.to_owned(),
            era: None,
            direction,
            method: None,
            id: None,
            tool: None,
            decision: Decision::Error,
            rule: None,
            reason: None,
            code: None,
            latency_us: None,
            kid: None,
            args_sha256: None,
            bytes,
            alert: false,
            policy_version: None,
            detail: None,
            traceparent: None,
            tracestate: None,
            protocol_version: None,
            arguments: None,
            fault: None,
            durable: false,
        }
    }
}
