//! What the HTTP transport must know about a message to route it — unlike stdio, HTTP answers
//! each request on its own stream: the id, the method, the progress token a notification is
//! related by, the request a cancellation names, and the `Mcp-Name` target of the modern era.
//! Only bytes that already passed the pipeline's strict parse (or `codec::decode`) come here.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::codec::{Envelope, Id, Kind};

#[derive(Debug, Clone)]
pub struct Peek {
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

/// One message, or every element of a batch.
pub fn peek_all(bytes: &[u8]) -> Vec<Peek> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    if text.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).unwrap_or_default();
        return items.iter().filter_map(|i| peek_str(i.get())).collect();
    }
    peek_str(text).into_iter().collect()
}

pub fn peek(bytes: &[u8]) -> Option<Peek> {
    peek_str(std::str::from_utf8(bytes).ok()?)
}

fn peek_str(text: &str) -> Option<Peek> {
    let env = Envelope::parse(text).ok()?;
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
    let target = string(params.name).or_else(|| string(params.uri));
    let cancels = if env.method.as_deref() == Some("notifications/cancelled") {
        params.request_id.and_then(id_of)
    } else {
        None
    };
    Some(Peek {
        kind: env.kind,
        id: env.id.clone(),
        method: env.method.as_deref().map(str::to_owned),
        progress_token: meta
            .progress_token
            .or(params.progress_token)
            .map(|t| t.get().to_owned()),
        cancels,
        target,
    })
}

/// An id from its JSON text (the envelope's own rule: strings, or integers kept literally).
pub fn id_of(raw: &RawValue) -> Option<Id> {
    let text = raw.get();
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text).ok().map(Id::Str);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Id::Num(text.to_owned()))
}

/// `notifications/cancelled` for `id`: what a stdio upstream gets when an HTTP client of the
/// modern era disconnects before its answer (the HTTP spelling of cancellation).
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
        let p = peek(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":"t1"}}}"#).unwrap();
        assert_eq!(p.kind, Kind::Request);
        assert_eq!(p.id, Some(Id::Num("7".into())));
        assert_eq!(p.progress_token.as_deref(), Some("\"t1\""));
        assert_eq!(p.target.as_deref(), Some("echo"));
        let c = peek(
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}}"#,
        )
        .unwrap();
        assert_eq!(c.cancels, Some(Id::Str("a".into())));
        let r = peek(
            br#"{"jsonrpc":"2.0","method":"resources/read","id":1,"params":{"uri":"demo://x"}}"#,
        )
        .unwrap();
        assert_eq!(r.target.as_deref(), Some("demo://x"));
        assert_eq!(
            peek_all(br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"x"}]"#)
                .len(),
            2
        );
    }

    #[test]
    fn cancellation_message() {
        let line = cancelled(&Id::Num("3".into()), "client disconnected");
        let p = peek(&line).unwrap();
        assert_eq!(p.cancels, Some(Id::Num("3".into())));
    }
}
