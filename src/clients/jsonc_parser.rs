//! The recursive-descent half of [`super::jsonc`]: tokens, strings with
//! escapes, numbers, and the JSONC relaxations (comments, trailing commas).

use super::jsonc::{Dialect, Member, Node, ParseError, Span};

/// Nesting limit: config files are shallow; this only stops a hostile file
/// from overflowing the stack.
const MAX_DEPTH: usize = 128;

pub(super) struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pub(super) pos: usize,
    dialect: Dialect,
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a str, pos: usize, dialect: Dialect) -> Parser<'a> {
        Parser {
            src,
            bytes: src.as_bytes(),
            pos,
            dialect,
        }
    }

    pub(super) fn error(&self, message: &str) -> ParseError {
        let before = &self.src[..self.pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError {
            line,
            column,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skip whitespace and (in JSONC) comments.
    pub(super) fn trivia(&mut self) -> Result<(), ParseError> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'/' if self.dialect == Dialect::Jsonc => match self.bytes.get(self.pos + 1) {
                    Some(b'/') => {
                        while self.peek().is_some_and(|c| c != b'\n') {
                            self.pos += 1;
                        }
                    }
                    Some(b'*') => {
                        let rest = &self.src[self.pos + 2..];
                        let end = rest
                            .find("*/")
                            .ok_or_else(|| self.error("unterminated comment"))?;
                        self.pos += 2 + end + 2;
                    }
                    _ => return Err(self.error("unexpected '/'")),
                },
                b'/' => return Err(self.error("comments are not allowed in JSON")),
                _ => break,
            }
        }
        Ok(())
    }

    pub(super) fn value(&mut self, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let (span, value) = self.string()?;
                Ok(Node::Str { span, value })
            }
            Some(b't') => self.keyword("true", serde_json::Value::Bool(true)),
            Some(b'f') => self.keyword("false", serde_json::Value::Bool(false)),
            Some(b'n') => self.keyword("null", serde_json::Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("unexpected end of file")),
        }
    }

    fn keyword(&mut self, word: &str, value: serde_json::Value) -> Result<Node, ParseError> {
        if self.src[self.pos..].starts_with(word) {
            let start = self.pos;
            self.pos += word.len();
            Ok(Node::Scalar {
                span: start..self.pos,
                value,
            })
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Validates the JSON number grammar, then lets serde_json convert it.
    fn number(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 || (n > 1 && self.bytes[int_start] == b'0') {
            return Err(self.error("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let value = serde_json::from_str(&self.src[start..self.pos])
            .map_err(|_| self.error("invalid number"))?;
        Ok(Node::Scalar {
            span: start..self.pos,
            value,
        })
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self
            .src
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("bad \\u escape"))?;
        let v = u32::from_str_radix(digits, 16).map_err(|_| self.error("bad \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    /// A string literal: returns its span (quotes included) and decoded text.
    fn string(&mut self) -> Result<(Span, String), ParseError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            // Copy runs of plain bytes at once; the source is valid UTF-8 and
            // we only stop on ASCII bytes, so slicing is always on a boundary.
            let run = self.pos;
            while self
                .peek()
                .is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.pos += 1;
            }
            out.push_str(&self.src[run..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start..self.pos, out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let mut code = hi;
                            // Surrogate pair: combine when the low half follows;
                            // a lone half becomes U+FFFD (tolerant, like browsers).
                            if (0xD800..0xDC00).contains(&hi)
                                && self.src[self.pos..].starts_with("\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    self.pos = save;
                                }
                            }
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => {
                            self.pos -= 2;
                            return Err(self.error("invalid escape in string"));
                        }
                    }
                }
                Some(_) => return Err(self.error("control character in string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// After an item: either the closing bracket, or a comma (and, in JSONC,
    /// possibly a trailing comma before the closing bracket).
    /// Returns true when the container is finished.
    fn after_item(&mut self, close: u8) -> Result<bool, ParseError> {
        self.trivia()?;
        match self.peek() {
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            Some(b',') => {
                self.pos += 1;
                self.trivia()?;
                if self.peek() == Some(close) {
                    if self.dialect == Dialect::Json {
                        return Err(self.error("trailing comma is not allowed in JSON"));
                    }
                    self.pos += 1;
                    return Ok(true);
                }
                Ok(false)
            }
            _ => Err(self.error(if close == b'}' {
                "expected ',' or '}'"
            } else {
                "expected ',' or ']'"
            })),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut members = Vec::new();
        self.trivia()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node::Object {
                span: start..self.pos,
                members,
            });
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let (key_span, key) = self.string()?;
            self.trivia()?;
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.trivia()?;
            let value = self.value(depth + 1)?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            if self.after_item(b'}')? {
                return Ok(Node::Object {
                    span: start..self.pos,
                    members,
                });
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.trivia()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Node::Array {
                span: start..self.pos,
                items,
            });
        }
        loop {
            items.push(self.value(depth + 1)?);
            if self.after_item(b']')? {
                return Ok(Node::Array {
                    span: start..self.pos,
                    items,
                });
            }
        }
    }
}
