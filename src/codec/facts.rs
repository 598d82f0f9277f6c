//! The routing facts of a message that already passed strict parsing: what a transport must
//! know to deliver it without reading it itself. HTTP answers each request on a stream of its
//! own (stdio has one pipe), so it routes by id, progress token, the request a cancellation
//! names and, in the modern era, the `Mcp-Name` target. Read here, once, from the envelope.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::envelope::{Envelope, Id, Kind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub kind: Kind,
    pub id: Option<Id>,
    pub method: Option<String>,
    /// The progress token as JSON text: `params._meta.progressToken` of a request asking for
    /// progress, `params.progressToken` of a progress notification.
    pub progress_token: Option<String>,
    /// `params.requestId` of `notifications/cancelled`.
    pub cancels: Option<Id>,
    /// `params.name`, else `params.uri`, when a string (the modern `Mcp-Name` header).
    pub target: Option<String>,
}

#[derive(Deserialize, Default)]
struct Params<'a> {
    #[serde(rename = "_meta", borrow, default)]
    meta: Option<&'a RawValue>,
    #[serde(rename = "requestId", borrow, default)]
    request_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    uri: Option<&'a RawValue>,
    #[serde(rename = "progressToken", borrow, default)]
    progress_token: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct Meta<'a> {
    #[serde(rename = "progressToken", borrow, default)]
    progress_token: Option<&'a RawValue>,
}

impl Facts {
    /// The facts of a decoded envelope (only `params` is read further, borrowed).
    pub fn of(env: &Envelope<'_>) -> Facts {
        let params: Params = env
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        let meta: Meta = params
            .meta
            .and_then(|m| serde_json::from_str(m.get()).ok())
            .unwrap_or_default();
        let string =
            |r: Option<&RawValue>| r.and_then(|r| serde_json::from_str::<String>(r.get()).ok());
        let cancels = if env.method.as_deref() == Some("notifications/cancelled") {
            params.request_id.and_then(Id::from_raw)
        } else {
            None
        };
        Facts {
            kind: env.kind,
            id: env.id.clone(),
            method: env.method.as_deref().map(str::to_owned),
            progress_token: meta
                .progress_token
                .or(params.progress_token)
                .map(|t| t.get().to_owned()),
            cancels,
            target: string(params.name).or_else(|| string(params.uri)),
        }
    }

    pub fn is_request(&self) -> bool {
        self.kind == Kind::Request
    }

    pub fn is_response(&self) -> bool {
        matches!(self.kind, Kind::Response | Kind::ErrorResponse)
    }
}

/// The facts of one message (bytes the pipeline already parsed strictly, or built itself).
pub fn facts(bytes: &[u8]) -> Option<Facts> {
    Envelope::parse(std::str::from_utf8(bytes).ok()?)
        .ok()
        .map(|e| Facts::of(&e))
}

/// The facts of one message, or of every element of a batch.
pub fn facts_all(bytes: &[u8]) -> Vec<Facts> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    if text.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).unwrap_or_default();
        return items
            .iter()
            .filter_map(|i| Envelope::parse(i.get()).ok())
            .map(|e| Facts::of(&e))
            .collect();
    }
    Envelope::parse(text)
        .ok()
        .map(|e| Facts::of(&e))
        .into_iter()
        .collect()
}

/// Whether any of `facts` is a request (something will be answered).
pub fn any_request(facts: &[Facts]) -> bool {
    facts.iter().any(Facts::is_request)
}

/// `notifications/cancelled` for `id`: the proxy's own cancellation (an HTTP client of the
/// modern era disconnected before its answer: the HTTP spelling of cancellation).
pub fn cancelled(id: &Id, reason: &str) -> Vec<u8> {
    let reason = serde_json::to_string(reason).unwrap_or_else(|_| "\"\"".into());
    format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{},"reason":{reason}}}}}"#,
        id.to_json()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_routing_facts() {
        let p = facts(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":"t1"}}}"#).unwrap();
        assert_eq!(p.kind, Kind::Request);
        assert_eq!(p.id, Some(Id::Num("7".into())));
        assert_eq!(p.progress_token.as_deref(), Some("\"t1\""));
        assert_eq!(p.target.as_deref(), Some("echo"));
        let c = facts(
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}}"#,
        )
        .unwrap();
        assert_eq!(c.cancels, Some(Id::Str("a".into())));
        let r = facts(
            br#"{"jsonrpc":"2.0","method":"resources/read","id":1,"params":{"uri":"demo://x"}}"#,
        )
        .unwrap();
        assert_eq!(r.target.as_deref(), Some("demo://x"));
        let batch =
            facts_all(br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"x"}]"#);
        assert_eq!(batch.len(), 2);
        assert!(!any_request(&batch));
    }

    #[test]
    fn cancellation_message() {
        let line = cancelled(&Id::Num("3".into()), "client disconnected");
        assert_eq!(facts(&line).unwrap().cancels, Some(Id::Num("3".into())));
    }
}
