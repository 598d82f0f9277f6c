//! Frame reader + strict parse (`codec::decode`), with the invariants that make them safe to
//! put in front of a server:
//! - no panic, whatever the bytes;
//! - a line the reader hands out is within the cap and holds no newline;
//! - a decoded message nests at most `max_depth` deep and is JSON serde_json can also read
//!   (we are never the looser parser);
//! - what we refuse as malformed, serde_json refuses too (we are never the stricter parser on
//!   syntax: a valid message is never lost).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_warden::codec::strict_json::{self, StrictError};
use mcp_warden::codec::{decode, Decoded, Frame, FrameReader, Limits};

const CAP: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_message_bytes: CAP,
        max_keys_per_object: 64,
        ..Limits::default()
    };
    // Small reads, so that lines cross the reader's buffer boundaries.
    let mut reader = FrameReader::new(Chunked { data, at: 0 }, CAP);
    while let Ok(Some(frame)) = reader.next_frame() {
        if let Frame::Line(line) = frame {
            assert!(line.len() <= CAP, "a line over the cap was handed out");
            assert!(!line.contains(&b'\n'), "a line holds a newline");
            check_line(&line, &limits);
        }
    }
    // The whole input as one message too (serve reads bodies, not lines).
    check_line(data, &limits);
});

fn check_line(line: &[u8], limits: &Limits) {
    match strict_json::validate(line, limits) {
        Ok(()) => {
            assert!(depth(line) <= limits.max_depth, "too deep and accepted");
            assert!(
                serde_json::from_slice::<&serde_json::value::RawValue>(trim(line)).is_ok(),
                "strict accepted what serde_json cannot read: {:?}",
                String::from_utf8_lossy(line)
            );
            if let Ok(Decoded::Single(env)) = decode(line, limits) {
                let _ = env.kind;
            }
        }
        Err(StrictError::Syntax(_) | StrictError::TrailingData | StrictError::InvalidUtf8) => {
            assert!(
                serde_json::from_slice::<serde_json::Value>(line).is_err(),
                "strict refused what serde_json reads: {:?}",
                String::from_utf8_lossy(line)
            );
        }
        Err(_) => {}
    }
    let _ = decode(line, limits);
}

/// JSON whitespace trimmed: `RawValue` keeps the surrounding whitespace out.
fn trim(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |i| i + 1);
    &b[start..end]
}

/// Container nesting of valid JSON, counted independently of the parser.
fn depth(b: &[u8]) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &c in b {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A reader that returns at most 7 bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    at: usize,
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
