//! The borrowed JSON-RPC envelope: the few top-level members every check needs, each kept as a
//! slice of the original bytes. Nothing here allocates for `params` or `result`; checks that need
//! more (a tool name, arguments) parse just that part on demand.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A JSON-RPC id as the peer sent it. Numbers keep their literal text so that the id we echo is
/// the id we received; strings are compared after unescaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Num(String),
    Str(String),
}

impl Id {
    /// The id as JSON text, ready to splice into a response.
    pub fn to_json(&self) -> String {
        match self {
            Id::Num(n) => n.clone(),
            Id::Str(s) => serde_json::to_string(s).unwrap_or_else(|_| "null".into()),
        }
    }

    /// An id from its JSON text: strings, or integers kept literally; anything else is none.
    pub fn from_raw(raw: &RawValue) -> Option<Id> {
        let text = raw.get();
        match text.as_bytes().first()? {
            b'"' => serde_json::from_str::<String>(text).ok().map(Id::Str),
            // Integers only: a fractional or exponent id is not a usable MCP id.
            b'-' | b'0'..=b'9' if text.bytes().skip(1).all(|b| b.is_ascii_digit()) => {
                Some(Id::Num(text.to_owned()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => f.write_str(n),
            Id::Str(s) => f.write_str(s),
        }
    }
}

/// What kind of JSON-RPC message a line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    ErrorResponse,
}

/// Why an envelope is not a JSON-RPC 2.0 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError {
    pub reason: &'static str,
    /// The id, when one could be read, so the error response can carry it.
    pub id: Option<Id>,
}

/// A validated JSON-RPC message, borrowing from the line it was read from.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub kind: Kind,
    pub id: Option<Id>,
    pub method: Option<Cow<'a, str>>,
    pub params: Option<&'a RawValue>,
    pub result: Option<&'a RawValue>,
    pub error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// `Option<&RawValue>` would turn an explicit `null` into "absent"; we must tell them apart
/// (`"id": null` is invalid, a missing id is a notification).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl<'a> Envelope<'a> {
    /// Parse a line that already passed strict validation and is a JSON object.
    pub fn parse(text: &'a str) -> Result<Envelope<'a>, EnvelopeError> {
        let raw: Raw<'a> = serde_json::from_str(text).map_err(|_| EnvelopeError {
            reason: "a JSON-RPC message must be a JSON object",
            id: None,
        })?;
        let id = match raw.id {
            None => None,
            Some(r) => match Id::from_raw(r) {
                Some(id) => Some(id),
                None if r.get() == "null" => None,
                None => {
                    return Err(EnvelopeError {
                        reason: "id must be a string or an integer",
                        id: None,
                    })
                }
            },
        };
        let fail = |reason| EnvelopeError {
            reason,
            id: id.clone(),
        };
        if raw.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
            return Err(fail("\"jsonrpc\" must be \"2.0\""));
        }
        let method = match raw.method {
            None => None,
            Some(m) => Some(
                serde_json::from_str::<Cow<'a, str>>(m.get())
                    .map_err(|_| fail("method must be a string"))?,
            ),
        };
        if let Some(p) = raw.params {
            if !matches!(p.get().as_bytes().first(), Some(b'{') | Some(b'[')) {
                return Err(fail("params must be an object or an array"));
            }
        }
        let id_null = raw.id.is_some() && id.is_none();
        let kind = match (&method, raw.result, raw.error) {
            (Some(_), None, None) if id_null => {
                return Err(fail("a request id must not be null"));
            }
            (Some(_), None, None) if raw.id.is_some() => Kind::Request,
            (Some(_), None, None) => Kind::Notification,
            (None, Some(_), None) if raw.id.is_some() => Kind::Response,
            (None, None, Some(_)) if raw.id.is_some() => Kind::ErrorResponse,
            (None, Some(_), Some(_)) => {
                return Err(fail("a response must not carry both result and error"))
            }
            (Some(_), _, _) => return Err(fail("a request must not carry result or error")),
            _ => return Err(fail("neither a request, a notification nor a response")),
        };
        if kind == Kind::Response && id_null {
            return Err(fail("a result must answer a non-null id"));
        }
        Ok(Envelope {
            kind,
            id,
            method,
            params: raw.params,
            result: raw.result,
            error: raw.error,
        })
    }

    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    pub fn is_request(&self) -> bool {
        self.kind == Kind::Request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_four_shapes() {
        let r = Envelope::parse(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert_eq!((r.kind, r.id), (Kind::Request, Some(Id::Num("7".into()))));
        let n =
            Envelope::parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind, Kind::Notification);
        let ok = Envelope::parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(
            (ok.kind, ok.id),
            (Kind::Response, Some(Id::Str("a".into())))
        );
        let e = Envelope::parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"x"}}"#)
            .unwrap();
        assert_eq!((e.kind, e.id), (Kind::ErrorResponse, None));
    }

    #[test]
    fn refuses_malformed_envelopes() {
        for bad in [
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
            r#"{"id":15,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":16,"result":{},"error":{"code":1,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":17,"method":["tools/call"]}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0"}"#,
        ] {
            assert!(Envelope::parse(bad).is_err(), "accepted {bad}");
        }
        // The id is kept for the error response when it was readable.
        let e = Envelope::parse(r#"{"id":15,"method":"tools/list"}"#).unwrap_err();
        assert_eq!(e.id, Some(Id::Num("15".into())));
    }

    #[test]
    fn ids_echo_as_received() {
        assert_eq!(
            Id::Num("12345678901234567890".into()).to_json(),
            "12345678901234567890"
        );
        assert_eq!(Id::Str("a\"b".into()).to_json(), r#""a\"b""#);
    }
}
