//! A small, tolerant JSON / JSONC parser that remembers the byte span of
//! every value and key.
//!
//! Why not `serde_json::Value`: install/uninstall must edit client configs
//! without disturbing anything else in them (comments, key order,
//! indentation, line endings). Re-serialising a `Value` loses all of that, so
//! instead we locate the exact spans of the values we touch and splice text.
//! The parser is strict JSON in [`Dialect::Json`] and additionally accepts
//! `//` and `/* */` comments and trailing commas in [`Dialect::Jsonc`]
//! (VS Code's format).

use std::fmt;
use std::ops::Range;

use super::jsonc_parser::Parser;

/// Byte range into the source text.
pub type Span = Range<usize>;

/// Which syntax a file is allowed to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 8259 JSON (a leading UTF-8 BOM is tolerated).
    Json,
    /// JSON with comments and trailing commas.
    Jsonc,
}

/// A parsed value and where it sits in the source.
#[derive(Debug, Clone)]
pub enum Node {
    Object {
        span: Span,
        members: Vec<Member>,
    },
    Array {
        span: Span,
        items: Vec<Node>,
    },
    Str {
        span: Span,
        value: String,
    },
    /// Numbers, booleans and null: never edited, only read.
    Scalar {
        span: Span,
        value: serde_json::Value,
    },
}

/// One `"key": value` pair of an object.
#[derive(Debug, Clone)]
pub struct Member {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// Why a file could not be parsed, with a 1-based position for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

impl Node {
    pub fn span(&self) -> &Span {
        match self {
            Node::Object { span, .. }
            | Node::Array { span, .. }
            | Node::Str { span, .. }
            | Node::Scalar { span, .. } => span,
        }
    }

    /// Members of an object (empty for anything else).
    pub fn members(&self) -> &[Member] {
        match self {
            Node::Object { members, .. } => members,
            _ => &[],
        }
    }

    /// Index of the member named `key`; the last one wins, as in JSON.parse.
    pub fn member_index(&self, key: &str) -> Option<usize> {
        self.members().iter().rposition(|m| m.key == key)
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.member_index(key).map(|i| &self.members()[i].value)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Items of an array (empty for anything else).
    pub fn items(&self) -> &[Node] {
        match self {
            Node::Array { items, .. } => items,
            _ => &[],
        }
    }

    /// Plain value, for reading semantics (detect) rather than editing.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Object { members, .. } => Value::Object(
                members
                    .iter()
                    .map(|m| (m.key.clone(), m.value.to_value()))
                    .collect(),
            ),
            Node::Array { items, .. } => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Str { value, .. } => Value::String(value.clone()),
            Node::Scalar { value, .. } => value.clone(),
        }
    }
}

/// Parse a whole document. Anything but whitespace/comments after the root
/// value is an error.
pub fn parse(text: &str, dialect: Dialect) -> Result<Node, ParseError> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut p = Parser::new(text, bom, dialect);
    p.trivia()?;
    let root = p.value(0)?;
    p.trivia()?;
    if p.pos != text.len() {
        return Err(p.error("unexpected text after the JSON value"));
    }
    Ok(root)
}

/// Position just past any whitespace and comments starting at `pos`.
/// Used by the rewriter to find a trailing comma after a value.
pub fn skip_trivia(text: &str, pos: usize) -> usize {
    let mut p = Parser::new(text, pos, Dialect::Jsonc);
    match p.trivia() {
        Ok(()) => p.pos,
        Err(_) => pos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_values() {
        let src = r#"{ "a": [1, "x\n"], "b": {"c": null} }"#;
        let root = parse(src, Dialect::Json).unwrap();
        let a = root.get("a").unwrap();
        assert_eq!(&src[a.span().clone()], r#"[1, "x\n"]"#);
        assert_eq!(a.items()[1].as_str(), Some("x\n"));
        let b = root.get("b").unwrap();
        assert_eq!(&src[b.span().clone()], r#"{"c": null}"#);
        assert_eq!(
            root.to_value(),
            serde_json::json!({"a":[1,"x\n"],"b":{"c":null}})
        );
    }

    #[test]
    fn jsonc_accepts_comments_and_trailing_commas() {
        let src = "{\n // hi\n \"a\": [1, 2,], /* x */ \"b\": 3,\n}";
        assert!(parse(src, Dialect::Jsonc).is_ok());
        assert!(parse(src, Dialect::Json).is_err());
    }

    #[test]
    fn rejects_garbage_and_reports_position() {
        let err = parse("{\n  \"a\": tru }", Dialect::Json).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(parse("{\"a\": 01}", Dialect::Json).is_err());
        assert!(parse("{\"a\": 1} x", Dialect::Json).is_err());
        assert!(parse("", Dialect::Json).is_err());
        assert!(parse("[\"\\q\"]", Dialect::Json).is_err());
    }

    #[test]
    fn decodes_escapes_and_surrogates() {
        let root = parse(r#"["\u00e9\ud83d\ude00\/\\"]"#, Dialect::Json).unwrap();
        assert_eq!(root.items()[0].as_str(), Some("é😀/\\"));
    }

    #[test]
    fn bom_is_tolerated_and_deep_nesting_is_refused() {
        assert!(parse("\u{feff}{}", Dialect::Json).is_ok());
        let deep = "[".repeat(500) + &"]".repeat(500);
        assert!(parse(&deep, Dialect::Json).is_err());
    }

    #[test]
    fn skip_trivia_skips_comments() {
        let src = "1 /* c */ // d\n ,";
        assert_eq!(&src[skip_trivia(src, 1)..], ",");
    }
}
