//! Borrowed views of the few `params` / `result` members the checks read. Each parses only what
//! it names; everything else in the message stays unparsed bytes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// `tools/call` params.
#[derive(Deserialize)]
pub struct CallParams<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub arguments: Option<&'a RawValue>,
}

/// `params._meta` of a modern-era request, and `protocolVersion` of `initialize`.
#[derive(Deserialize, Default)]
pub struct VersionPeek<'a> {
    #[serde(rename = "protocolVersion", borrow, default)]
    pub protocol_version: Option<Cow<'a, str>>,
    #[serde(rename = "_meta", borrow, default)]
    pub meta: Option<MetaPeek<'a>>,
    /// Pagination cursor of a listing request.
    #[serde(borrow, default)]
    pub cursor: Option<&'a RawValue>,
    /// `prompts/get` name.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// `resources/read` (and subscribe) URI.
    /// (Raw: a non-string `uri` of some other method must not spoil the rest of the peek.)
    #[serde(borrow, default)]
    pub uri: Option<&'a RawValue>,
    /// `initialize` client capabilities.
    #[serde(borrow, default)]
    pub capabilities: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
pub struct MetaPeek<'a> {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow, default)]
    pub protocol_version: Option<Cow<'a, str>>,
    /// Modern era: the client's capabilities, sent with every request.
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities", borrow, default)]
    pub client_capabilities: Option<&'a RawValue>,
    /// W3C trace context (OpenTelemetry MCP conventions): read, never changed. Raw, so a
    /// non-string value spoils nothing else.
    #[serde(borrow, default)]
    pub traceparent: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub tracestate: Option<&'a RawValue>,
    /// The request asks for progress under this token (its JSON text is the key).
    #[serde(rename = "progressToken", borrow, default)]
    pub progress_token: Option<&'a RawValue>,
}

/// `notifications/cancelled` params.
#[derive(Deserialize)]
pub struct CancelParams<'a> {
    #[serde(rename = "requestId", borrow)]
    pub request_id: &'a RawValue,
}

pub fn parse<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}
