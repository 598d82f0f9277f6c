//! Strict validation of one JSON document: well-formed, no trailing data, nesting depth bounded,
//! and no duplicate object keys anywhere (compared after unescaping, so `"method"` and
//! `"\u006dethod"` collide). One pass, no tree is built: keys are borrowed when they carry no
//! escapes, and only the keys of the objects on the current path are held.
//!
//! Why not `serde_json::Value`: it silently keeps the last of two duplicate keys, which is exactly
//! the disagreement a method-smuggling attack needs (proxy checks one value, server runs the other).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// What made a document unacceptable. Each maps to one JSON-RPC code and audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictError {
    /// Not valid UTF-8 (overlong encodings, truncated sequences, lone surrogates).
    InvalidUtf8,
    /// Not JSON at all, or JSON with garbage after the first value.
    Syntax(String),
    /// A second JSON value after the first on the same line.
    TrailingData,
    /// Nested deeper than the configured limit.
    TooDeep { limit: usize },
    /// The same key twice in one object.
    DuplicateKey(String),
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictError::InvalidUtf8 => f.write_str("message is not valid UTF-8"),
            StrictError::Syntax(e) => write!(f, "message is not valid JSON: {e}"),
            StrictError::TrailingData => f.write_str(
                "more than one JSON value on one line (trailing data after the message)",
            ),
            StrictError::TooDeep { limit } => {
                write!(f, "JSON nesting deeper than {limit} levels")
            }
            StrictError::DuplicateKey(k) => write!(f, "duplicate object key {k:?}"),
        }
    }
}

/// Validate `bytes` as exactly one JSON value with the rules above.
pub fn validate(bytes: &[u8], max_depth: usize) -> Result<(), StrictError> {
    validate_text(bytes, max_depth).map(|_| ())
}

/// `validate`, returning the bytes as the text they proved to be (one UTF-8 check, not two).
pub fn validate_text(bytes: &[u8], max_depth: usize) -> Result<&str, StrictError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StrictError::InvalidUtf8)?;
    let failure = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = Walk {
        depth: 0,
        max_depth,
        failure: &failure,
    };
    let outcome = seed.deserialize(&mut de).and_then(|()| de.end());
    match outcome {
        Ok(()) => Ok(text),
        Err(e) => Err(failure.take().unwrap_or_else(|| classify(&e))),
    }
}

fn classify(e: &serde_json::Error) -> StrictError {
    let msg = e.to_string();
    if msg.starts_with("trailing characters") {
        StrictError::TrailingData
    } else if msg.starts_with("recursion limit exceeded") {
        // serde_json's own guard (128) fired first; report our limit.
        StrictError::TooDeep { limit: 64 }
    } else {
        StrictError::Syntax(msg)
    }
}

/// A `DeserializeSeed` that walks any JSON value, enforcing depth and key uniqueness.
#[derive(Clone, Copy)]
struct Walk<'f> {
    depth: usize,
    max_depth: usize,
    failure: &'f Cell<Option<StrictError>>,
}

impl<'f> Walk<'f> {
    fn nested<E: serde::de::Error>(self) -> Result<Walk<'f>, E> {
        let depth = self.depth + 1;
        if depth > self.max_depth {
            self.failure.set(Some(StrictError::TooDeep {
                limit: self.max_depth,
            }));
            return Err(E::custom("too deep"));
        }
        Ok(Walk { depth, ..self })
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        // Objects in MCP traffic are small; a linear scan beats hashing below a few dozen keys.
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if seen.contains(&key) {
                self.failure
                    .set(Some(StrictError::DuplicateKey(key.clone().into_owned())));
                return Err(A::Error::custom("duplicate key"));
            }
            seen.push(key);
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_messages() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,2,{"b":null}]}}}"#;
        assert_eq!(validate(ok, 64), Ok(()));
    }

    #[test]
    fn duplicate_keys_are_found_after_unescaping() {
        let smuggled = br#"{"jsonrpc":"2.0","id":1,"method":"a","\u006dethod":"b"}"#;
        assert_eq!(
            validate(smuggled, 64),
            Err(StrictError::DuplicateKey("method".into()))
        );
        let nested = br#"{"params":{"name":"read","arguments":{},"name":"delete"}}"#;
        assert!(matches!(
            validate(nested, 64),
            Err(StrictError::DuplicateKey(_))
        ));
        // The same key in sibling objects is fine.
        assert_eq!(validate(br#"[{"a":1},{"a":2}]"#, 64), Ok(()));
    }

    #[test]
    fn depth_is_bounded_without_stack_exhaustion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            validate(deep.as_bytes(), 64),
            Err(StrictError::TooDeep { .. })
        ));
        let at_limit = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(validate(at_limit.as_bytes(), 64), Ok(()));
        let over = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(validate(over.as_bytes(), 64).is_err());
    }

    #[test]
    fn trailing_values_and_bad_utf8_are_refused() {
        assert_eq!(validate(b"{}{}", 64), Err(StrictError::TrailingData));
        assert_eq!(
            validate(b"{\"a\":\"\xc0\xae\"}", 64),
            Err(StrictError::InvalidUtf8)
        );
        assert!(matches!(
            validate(br#"{"a":"\ud800"}"#, 64),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(validate(b"", 64), Err(StrictError::Syntax(_))));
    }
}
