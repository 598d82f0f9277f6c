//! Who an oversized server answer was for. The framer discards a line past
//! `proxy.max_message_bytes` without keeping its bytes (that is the memory bound), so the id of
//! the request it answered is lost with it — and that request would wait forever. This reader
//! sits under the framer on the server's stdout and keeps, for long lines only, the first and
//! last few hundred bytes: enough to find a top-level `"id"` at either end (servers put it
//! first or last), never more than a few KiB whatever the server sends.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

/// Bytes kept from each end of a line.
const HEAD: usize = 256;
const TAIL: usize = 256;
/// Long lines remembered until the relay asks about them.
const KEEP: usize = 16;

/// The ends of one long line: its index (0-based, counting every `\n`), head and tail.
type Ends = (u64, Vec<u8>, Vec<u8>);

#[derive(Default)]
struct State {
    line: u64,
    len: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
    long: VecDeque<Ends>,
}

/// A `Read` that watches lines go by; `Heads` answers for them.
pub struct LineHeads<R> {
    inner: R,
    max: usize,
    state: Arc<Mutex<State>>,
}

/// The relay's handle: the ends of line `n`, if it was long.
#[derive(Clone)]
pub struct Heads(Arc<Mutex<State>>);

impl<R: Read> LineHeads<R> {
    pub fn new(inner: R, max: usize) -> (LineHeads<R>, Heads) {
        let state = Arc::new(Mutex::new(State::default()));
        (
            LineHeads {
                inner,
                max,
                state: state.clone(),
            },
            Heads(state),
        )
    }
}

impl State {
    fn feed(&mut self, chunk: &[u8], max: usize) {
        if self.head.len() < HEAD {
            let n = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
        }
        // Only bytes that could be among the last TAIL of a line longer than `max` are kept.
        let from = max.saturating_sub(TAIL);
        let end = self.len + chunk.len();
        if end > from {
            let skip = from.saturating_sub(self.len);
            self.tail.extend_from_slice(&chunk[skip..]);
            if self.tail.len() > 2 * TAIL {
                self.tail.drain(..self.tail.len() - TAIL);
            }
        }
        self.len = end;
    }

    fn end_line(&mut self, max: usize) {
        if self.len > max {
            if self.long.len() >= KEEP {
                self.long.pop_front();
            }
            let tail = self.tail[self.tail.len().saturating_sub(TAIL)..].to_vec();
            self.long
                .push_back((self.line, std::mem::take(&mut self.head), tail));
        }
        self.line += 1;
        self.len = 0;
        self.head.clear();
        self.tail.clear();
    }
}

impl<R: Read> Read for LineHeads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut rest = &buf[..n];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            s.feed(&rest[..i], self.max);
            s.end_line(self.max);
            rest = &rest[i + 1..];
        }
        s.feed(rest, self.max);
        Ok(n)
    }
}

impl Heads {
    /// The JSON text of the top-level `id` of line `n` (0-based), if that line was long and
    /// its id could be read from either end.
    pub fn id_of(&self, n: u64) -> Option<String> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while s.long.front().is_some_and(|(l, _, _)| *l < n) {
            s.long.pop_front();
        }
        let (head, tail) = match s.long.front() {
            Some((l, h, t)) if *l == n => (h.clone(), t.clone()),
            // The last line, cut off by end of stream: still being watched.
            _ if s.line == n => (s.head.clone(), s.tail.clone()),
            _ => return None,
        };
        id_in_head(&head).or_else(|| id_in_tail(&tail))
    }
}

/// A top-level `"id": <number or string>` in the first bytes of an object.
fn id_in_head(b: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b'"' => {
                let end = string_end(b, i)?;
                if depth == 1 && &b[i..=end] == b"\"id\"" {
                    let mut j = end + 1;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if b.get(j) == Some(&b':') {
                        return value_at(b, j + 1);
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `…"id": <value> }` closing the line: the last member of the top-level object.
fn id_in_tail(b: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(b).ok().or_else(|| {
        // The tail may start inside a multi-byte character: skip to a boundary.
        (1..4).find_map(|k| std::str::from_utf8(b.get(k..)?).ok())
    })?;
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#""id"\s*:\s*(-?[0-9]+|"(?:[^"\\]|\\.){0,200}")\s*\}\s*$"#)
            .expect("id regex compiles")
    });
    RE.captures(text).map(|c| c[1].to_owned())
}

/// Index of the quote closing the string that opens at `start`.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn value_at(b: &[u8], mut i: usize) -> Option<String> {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    match b.get(i)? {
        b'"' => {
            let end = string_end(b, i)?;
            Some(String::from_utf8_lossy(&b[start..=end]).into_owned())
        }
        b'-' | b'0'..=b'9' => {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            // A number cut off by the end of the head is not an id we can trust.
            (i < b.len()).then(|| String::from_utf8_lossy(&b[start..i]).into_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], max: usize, chunk: usize) -> Heads {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let (mut r, heads) = LineHeads::new(Chunks(input, chunk), max);
        io::copy(&mut r, &mut io::sink()).unwrap();
        heads
    }

    #[test]
    fn ids_of_long_lines_are_found_at_either_end() {
        let big = "x".repeat(5000);
        let input = format!(
            "{{\"id\":1,\"result\":{{}}}}\n{{\"jsonrpc\":\"2.0\",\"result\":{{\"t\":\"{big}\",\"id\":99}},\"id\":\"a\\\"b\"}}\n{{\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{{\"t\":\"{big}\"}}}}\n"
        );
        for chunk in [1, 7, 4096, 1 << 20] {
            let heads = run(input.as_bytes(), 1000, chunk);
            assert_eq!(heads.id_of(0), None, "short lines are not kept");
            assert_eq!(heads.id_of(1).as_deref(), Some("\"a\\\"b\""), "{chunk}");
            assert_eq!(heads.id_of(2).as_deref(), Some("42"), "{chunk}");
        }
    }

    #[test]
    fn nested_ids_are_not_taken_for_the_top_level_one() {
        let big = "y".repeat(3000);
        let line = format!("{{\"result\":{{\"id\":7,\"t\":\"{big}\"}},\"jsonrpc\":\"2.0\"}}\n");
        assert_eq!(run(line.as_bytes(), 100, 64).id_of(0), None);
    }
}
