//! The only place that knows the wire bytes: framing, strict JSON validation, the borrowed
//! envelope, and the one byte-level rewrite we allow on a passing message.
//!
//! | file            | job                                                        |
//! |-----------------|------------------------------------------------------------|
//! | `frame.rs`      | newline framing with a hard buffering cap                  |
//! | `strict_json.rs`| UTF-8, one value, depth limit, duplicate keys, key cap     |
//! | `keyset.rs`     | the keys of one object, linear-time duplicate check        |
//! | `envelope.rs`   | JSON-RPC shape: request / notification / response, ids     |
//! | `facts.rs`      | routing facts: kind, id, method, progress token, cancelled id, target |

pub mod envelope;
pub mod facts;
pub mod frame;
mod keyset;
pub mod strict_json;

pub use envelope::{Envelope, Id, Kind};
pub use facts::{facts, facts_all, Facts};
pub use frame::{Frame, FrameReader};

use crate::errors::Rejection;
use serde_json::value::RawValue;

/// Limits applied to every inbound message.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_depth: usize,
    /// Keys in one JSON object (`proxy.max_keys_per_object`): no MCP message needs thousands,
    /// and a cap bounds the work an unauthenticated peer can ask of the duplicate-key check.
    pub max_keys_per_object: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 * 1024 * 1024,
            max_depth: 64,
            max_keys_per_object: 4096,
        }
    }
}

/// A line that passed strict parsing.
pub enum Decoded<'a> {
    Single(Envelope<'a>),
    /// A JSON array; the caller decides whether batches are allowed in this session.
    Batch(Vec<&'a RawValue>),
}

/// Parse one line strictly. Every failure is a ready-made rejection (code, audit event, reason).
pub fn decode<'a>(line: &'a [u8], limits: &Limits) -> Result<Decoded<'a>, Rejection> {
    if line.len() > limits.max_message_bytes {
        return Err(Rejection::oversize(
            line.len() as u64,
            limits.max_message_bytes,
        ));
    }
    let text = strict_json::validate_text(line, limits).map_err(Rejection::from_strict)?;
    if text.trim_start().starts_with('[') {
        let items: Vec<&'a RawValue> = serde_json::from_str(text)
            .map_err(|e| Rejection::from_strict(strict_json::StrictError::Syntax(e.to_string())))?;
        return Ok(Decoded::Batch(items));
    }
    Envelope::parse(text)
        .map(Decoded::Single)
        .map_err(|e| Rejection::invalid_envelope(e.reason, e.id))
}

/// Raw U+2028, U+2029 and U+0085 are valid inside JSON strings but are line breaks to many
/// line splitters downstream (Python's `str.splitlines`, JavaScript before ES2019), which would
/// cut one message in two. They can only occur inside strings, so escaping them byte-for-byte is
/// an exact, meaning-preserving rewrite. `None` when the line has none (forward it untouched).
pub fn escape_line_separators(line: &[u8]) -> Option<Vec<u8>> {
    let needs = line
        .windows(2)
        .any(|w| (w[0] == 0xE2 && w[1] == 0x80) || (w[0] == 0xC2 && w[1] == 0x85));
    if !needs {
        return None;
    }
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut changed = false;
    let mut i = 0;
    while i < line.len() {
        match &line[i..] {
            [0xE2, 0x80, 0xA8, ..] => {
                out.extend_from_slice(b"\\u2028");
                i += 3;
                changed = true;
            }
            [0xE2, 0x80, 0xA9, ..] => {
                out.extend_from_slice(b"\\u2029");
                i += 3;
                changed = true;
            }
            [0xC2, 0x85, ..] => {
                out.extend_from_slice(b"\\u0085");
                i += 2;
                changed = true;
            }
            _ => {
                out.push(line[i]);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_separators_are_escaped_exactly() {
        let line = "{\"t\":\"ok\u{2028}\u{2029}\u{0085}done\"}".as_bytes();
        let out = escape_line_separators(line).unwrap();
        assert_eq!(out, br#"{"t":"ok\u2028\u2029\u0085done"}"#.to_vec());
        let a: serde_json::Value = serde_json::from_slice(line).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(a, b);
        assert_eq!(escape_line_separators(b"{\"t\":\"\xe2\x80\x94\"}"), None);
    }
}
