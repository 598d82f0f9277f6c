//! Strict validation of one JSON document: well-formed (RFC 8259), no trailing data, nesting
//! depth bounded, keys per object bounded, and no duplicate object keys anywhere (compared after
//! unescaping, so `"method"` and `"\u006dethod"` collide).
//!
//! A hand-written single pass over the bytes, no tree built, no recursion (an explicit stack of
//! the open containers, at most `max_depth` deep), and linear time: each byte is looked at a
//! bounded number of times and each key costs one set insertion (`keyset.rs`). Keys are borrowed
//! unless they carry escapes, and only the keys of the objects on the current path are held.
//!
//! Why not `serde_json::Value`: it silently keeps the last of two duplicate keys, which is exactly
//! the disagreement a method-smuggling attack needs (proxy checks one value, server runs the
//! other). Why not a serde visitor: serde_json turns every number into an `f64` or integer on the
//! way, and refuses valid JSON such as `1e400` ("number out of range"). Numbers here are checked
//! against the grammar only; the bytes are forwarded as they came, so their value is not ours
//! to judge.

use std::borrow::Cow;
use std::fmt;

use super::keyset::KeySet;
use super::Limits;

/// What made a document unacceptable. Each maps to one JSON-RPC code and audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictError {
    /// Not valid UTF-8 (overlong encodings, truncated sequences, lone surrogates).
    InvalidUtf8,
    /// Not JSON at all.
    Syntax(String),
    /// A second JSON value (or anything but whitespace) after the first on the same line.
    TrailingData,
    /// Nested deeper than the configured limit.
    TooDeep { limit: usize },
    /// The same key twice in one object.
    DuplicateKey(String),
    /// More keys in one object than the configured limit.
    TooManyKeys { limit: usize },
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
            StrictError::TooManyKeys { limit } => write!(
                f,
                "a JSON object has more than {limit} keys (limit proxy.max_keys_per_object)"
            ),
        }
    }
}

/// Validate `bytes` as exactly one JSON value with the rules above.
pub fn validate(bytes: &[u8], limits: &Limits) -> Result<(), StrictError> {
    validate_text(bytes, limits).map(|_| ())
}

/// `validate`, returning the bytes as the text they proved to be (one UTF-8 check, not two).
pub fn validate_text<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, StrictError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StrictError::InvalidUtf8)?;
    Scanner {
        text,
        b: bytes,
        i: 0,
        limits,
        spare: Vec::new(),
    }
    .document()?;
    Ok(text)
}

/// An open container on the path from the root to the current value.
enum Open<'a> {
    Array,
    Object(KeySet<'a>),
}

struct Scanner<'a, 'l> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    limits: &'l Limits,
    /// Key sets of closed objects, reused: a listing of thousands of small objects must not
    /// cost an allocation per object.
    spare: Vec<KeySet<'a>>,
}

impl<'a> Scanner<'a, '_> {
    fn document(&mut self) -> Result<(), StrictError> {
        let mut stack: Vec<Open<'a>> = Vec::new();
        'value: loop {
            // One value starts here; containers are opened and we come back for their first
            // member, scalars are consumed whole.
            self.ws();
            match self.peek() {
                Some(b'{') | Some(b'[') => {
                    let object = self.b[self.i] == b'{';
                    self.i += 1;
                    if stack.len() >= self.limits.max_depth {
                        return Err(StrictError::TooDeep {
                            limit: self.limits.max_depth,
                        });
                    }
                    self.ws();
                    if object {
                        if self.peek() == Some(b'}') {
                            self.i += 1;
                        } else {
                            let mut keys = self.spare.pop().unwrap_or_default();
                            self.member_key(&mut keys)?;
                            stack.push(Open::Object(keys));
                            continue 'value;
                        }
                    } else if self.peek() == Some(b']') {
                        self.i += 1;
                    } else {
                        stack.push(Open::Array);
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    self.string(false)?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                Some(_) => return Err(self.syntax("expected a value")),
                None => return Err(self.syntax("end of input while expecting a value")),
            }
            // A value ended: close what it completes, or go on to the next member.
            loop {
                let Some(top) = stack.last_mut() else {
                    break 'value;
                };
                self.ws();
                let close = match top {
                    Open::Array => b']',
                    Open::Object(_) => b'}',
                };
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if let Open::Object(keys) = top {
                            self.ws();
                            self.member_key(keys)?;
                        }
                        continue 'value;
                    }
                    Some(c) if c == close => {
                        self.i += 1;
                        if let Some(Open::Object(mut keys)) = stack.pop() {
                            if let Err(dup) = keys.close() {
                                return Err(StrictError::DuplicateKey(dup.into_owned()));
                            }
                            keys.clear();
                            self.spare.push(keys);
                        }
                    }
                    Some(_) => {
                        return Err(self.syntax(if close == b']' {
                            "expected `,` or `]`"
                        } else {
                            "expected `,` or `}`"
                        }))
                    }
                    None => return Err(self.syntax("end of input inside a container")),
                }
            }
        }
        self.ws();
        if self.i < self.b.len() {
            return Err(StrictError::TrailingData);
        }
        Ok(())
    }

    /// A member's key and the `:` after it; the key must be new to `keys` and within the cap.
    fn member_key(&mut self, keys: &mut KeySet<'a>) -> Result<(), StrictError> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("expected a string key"));
        }
        self.i += 1;
        let key = self.string(true)?.unwrap_or(Cow::Borrowed(""));
        if keys.len() >= self.limits.max_keys_per_object {
            return Err(StrictError::TooManyKeys {
                limit: self.limits.max_keys_per_object,
            });
        }
        if let Err(dup) = keys.insert(key) {
            return Err(StrictError::DuplicateKey(dup.into_owned()));
        }
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.syntax("expected `:` after an object key"));
        }
        self.i += 1;
        Ok(())
    }

    /// The rest of a string whose opening quote was consumed. With `want`, its unescaped text
    /// (borrowed when it has no escapes).
    fn string(&mut self, want: bool) -> Result<Option<Cow<'a, str>>, StrictError> {
        let start = self.i;
        let mut owned: Option<String> = None;
        // `run` starts the stretch of plain characters not yet copied into `owned`.
        let mut run = start;
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.syntax("end of input inside a string"));
            };
            match c {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    if !want {
                        return Ok(None);
                    }
                    return Ok(Some(match owned {
                        None => Cow::Borrowed(&self.text[start..end]),
                        Some(mut s) => {
                            s.push_str(&self.text[run..end]);
                            Cow::Owned(s)
                        }
                    }));
                }
                b'\\' => {
                    let at = self.i;
                    let ch = self.escape()?;
                    if want {
                        let s = owned.get_or_insert_with(String::new);
                        // `run..` ends before the backslash; the escape is 2 or 6 (or 12) bytes.
                        s.push_str(&self.text[run..at]);
                        s.push(ch);
                    }
                    run = self.i;
                }
                0x00..=0x1F => {
                    return Err(self.syntax("control character inside a string (must be escaped)"))
                }
                _ => self.i += 1,
            }
        }
    }

    /// One escape sequence at `self.i` (the backslash); the character it stands for.
    fn escape(&mut self) -> Result<char, StrictError> {
        let c = self.b.get(self.i + 1).copied();
        self.i += 2;
        Ok(match c {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let first = self.hex4()?;
                match first {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by an escaped low one; a lone one is
                        // not a character (and serde_json, which reads these bytes later, refuses
                        // it too).
                        if self.b.get(self.i) != Some(&b'\\')
                            || self.b.get(self.i + 1) != Some(&b'u')
                        {
                            return Err(self.syntax("lone leading surrogate in a \\u escape"));
                        }
                        self.i += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.syntax("lone leading surrogate in a \\u escape"));
                        }
                        let cp = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                        char::from_u32(cp).ok_or_else(|| self.syntax("invalid \\u escape"))?
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.syntax("lone trailing surrogate in a \\u escape"))
                    }
                    _ => char::from_u32(first).ok_or_else(|| self.syntax("invalid \\u escape"))?,
                }
            }
            Some(_) => return Err(self.syntax("invalid escape")),
            None => return Err(self.syntax("end of input inside a string")),
        })
    }

    fn hex4(&mut self) -> Result<u32, StrictError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.syntax("invalid \\u escape (four hex digits expected)")),
            };
            v = v * 16 + u32::from(d);
            self.i += 1;
        }
        Ok(v)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` — the grammar only: `1e400`,
    /// `-0` and 30-digit integers are valid JSON and are forwarded as they came.
    fn number(&mut self) -> Result<(), StrictError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.syntax("invalid number (leading zero)"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("invalid number (digit expected after `.`)"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("invalid number (digit expected in the exponent)"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), StrictError> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.syntax("expected a value"))
        }
    }

    /// JSON whitespace only (not every Unicode space, not a BOM).
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn syntax(&self, what: &str) -> StrictError {
        StrictError::Syntax(format!("{what} at byte {}", self.i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(max_depth: usize) -> Limits {
        Limits {
            max_depth,
            ..Limits::default()
        }
    }

    fn v(bytes: &[u8]) -> Result<(), StrictError> {
        validate(bytes, &Limits::default())
    }

    #[test]
    fn accepts_ordinary_messages() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,2,{"b":null}]}}}"#;
        assert_eq!(v(ok), Ok(()));
        for ok in [
            &b" { \"a\" : [ true , false , null , \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\" ] } \r\n"[..],
            b"[]",
            b"{}",
            b"[[],{}]",
            b"\"\"",
            b"0",
            "{\"caf\u{e9}\":\"\u{1F600}\"}".as_bytes(),
        ] {
            assert_eq!(v(ok), Ok(()), "{}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn every_number_the_grammar_allows_passes() {
        for n in [
            "0",
            "-0",
            "1e400",
            "-1e400",
            "1E+2",
            "1e-2",
            "1.5E-400",
            "0.0",
            "123456789012345678901234567890",
            "-123456789012345678901234567890.5e10",
        ] {
            let msg = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"n":{n},"a":[{n}]}}}}"#
            );
            assert_eq!(v(msg.as_bytes()), Ok(()), "{n}");
        }
        for bad in [
            "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "1.e3",
        ] {
            let msg = format!(r#"{{"n":{bad}}}"#);
            assert!(
                matches!(v(msg.as_bytes()), Err(StrictError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_documents_are_syntax_errors() {
        for bad in [
            &b"{"[..],
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{1:2}",
            b"[1 2]",
            b"\"abc",
            b"\"a\x01b\"",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"tru",
            b"nul",
            b"\xef\xbb\xbf{}",
            b"{\"a\":1}}",
        ] {
            let r = v(bad);
            assert!(
                matches!(
                    r,
                    Err(StrictError::Syntax(_))
                        | Err(StrictError::TrailingData)
                        | Err(StrictError::InvalidUtf8)
                ),
                "{:?}: {r:?}",
                String::from_utf8_lossy(bad)
            );
            // Whatever we refuse, serde_json refuses as well: we are never the looser parser.
            assert!(serde_json::from_slice::<serde::de::IgnoredAny>(bad).is_err());
        }
    }

    #[test]
    fn duplicate_keys_are_found_after_unescaping() {
        let smuggled = br#"{"jsonrpc":"2.0","id":1,"method":"a","\u006dethod":"b"}"#;
        assert_eq!(v(smuggled), Err(StrictError::DuplicateKey("method".into())));
        let nested = br#"{"params":{"name":"read","arguments":{},"name":"delete"}}"#;
        assert!(matches!(v(nested), Err(StrictError::DuplicateKey(_))));
        // A surrogate pair and the raw character are the same key.
        let pair = "{\"\u{1F600}\":1,\"\\ud83d\\ude00\":2}";
        assert!(matches!(
            v(pair.as_bytes()),
            Err(StrictError::DuplicateKey(_))
        ));
        // The same key in sibling objects is fine, and so are keys that only look alike.
        assert_eq!(v(br#"[{"a":1},{"a":2}]"#), Ok(()));
        assert_eq!(v(br#"{"a":{"a":{"a":1}},"b":1,"A":1,"a ":1}"#), Ok(()));
    }

    #[test]
    fn duplicates_are_found_in_large_objects_too() {
        let mut s = String::from("{");
        for i in 0..1000 {
            s.push_str(&format!("\"k{i}\":{i},"));
        }
        s.push_str("\"k\\u0035\":1}");
        assert_eq!(v(s.as_bytes()), Err(StrictError::DuplicateKey("k5".into())));
    }

    fn many_keys(n: usize) -> String {
        let mut s = String::with_capacity(n * 10);
        s.push('{');
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!("\"{i:x}\":0"));
        }
        s.push('}');
        s
    }

    #[test]
    fn keys_per_object_are_capped() {
        let limits = Limits::default();
        assert_eq!(limits.max_keys_per_object, 4096);
        assert_eq!(validate(many_keys(4096).as_bytes(), &limits), Ok(()));
        assert_eq!(
            validate(many_keys(4097).as_bytes(), &limits),
            Err(StrictError::TooManyKeys { limit: 4096 })
        );
        // The cap is per object: many small objects are fine.
        let arr = format!("[{}]", vec![many_keys(100); 100].join(","));
        assert_eq!(validate(arr.as_bytes(), &limits), Ok(()));
    }

    /// The duplicate check was quadratic (48k keys: 17 s). 200k keys must take well under 2 s
    /// even in a debug build; a quadratic check would take minutes.
    #[test]
    fn duplicate_check_is_linear_in_keys() {
        let doc = many_keys(200_000);
        let limits = Limits {
            max_keys_per_object: usize::MAX,
            ..Limits::default()
        };
        let started = std::time::Instant::now();
        assert_eq!(validate(doc.as_bytes(), &limits), Ok(()));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn depth_is_bounded_without_stack_exhaustion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            validate(deep.as_bytes(), &lim(64)),
            Err(StrictError::TooDeep { limit: 64 })
        ));
        let at_limit = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(validate(at_limit.as_bytes(), &lim(64)), Ok(()));
        let over = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(validate(over.as_bytes(), &lim(64)).is_err());
        let objects = format!("{}1{}", "{\"a\":".repeat(65), "}".repeat(65));
        assert!(matches!(
            validate(objects.as_bytes(), &lim(64)),
            Err(StrictError::TooDeep { .. })
        ));
    }

    #[test]
    fn trailing_values_and_bad_utf8_are_refused() {
        assert_eq!(v(b"{}{}"), Err(StrictError::TrailingData));
        assert_eq!(v(b"{} x"), Err(StrictError::TrailingData));
        assert_eq!(v(b"{\"a\":\"\xc0\xae\"}"), Err(StrictError::InvalidUtf8));
        assert!(matches!(
            v(br#"{"a":"\ud800"}"#),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(
            v(br#"{"a":"\udc00"}"#),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(
            v(br#"{"a":"\ud800\u0041"}"#),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(v(b""), Err(StrictError::Syntax(_))));
        assert!(matches!(v(b"  "), Err(StrictError::Syntax(_))));
    }
}
