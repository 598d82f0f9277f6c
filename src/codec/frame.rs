//! Newline-delimited framing for the stdio transport, with a hard cap on buffering.
//!
//! A peer that never sends `\n` must not make us allocate without bound: once a line passes
//! `max_bytes` we stop storing it, discard through the next newline (resynchronising on the
//! following message) and report its size so the caller can answer and audit it.

use std::io::{self, BufRead};

/// One thing read off a newline-delimited stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its terminating `\n`.
    Line(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded. `seen` counts what was read of it
    /// (capped at the point the stream ended or the newline came).
    Oversize { seen: u64 },
}

/// Reads frames from `inner`, never holding more than `max_bytes` of one line.
pub struct FrameReader<R> {
    inner: R,
    max_bytes: usize,
}

impl<R: BufRead> FrameReader<R> {
    pub fn new(inner: R, max_bytes: usize) -> Self {
        FrameReader { inner, max_bytes }
    }

    /// The next frame, or `None` at end of stream. A final line without `\n` is still a frame.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut line = Vec::new();
        let mut oversize: Option<u64> = None;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                // End of stream.
                return Ok(match oversize {
                    Some(seen) => Some(Frame::Oversize { seen }),
                    None if line.is_empty() => None,
                    None => Some(Frame::Line(line)),
                });
            }
            let (chunk, done) = match memchr(buf) {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            match oversize.as_mut() {
                Some(seen) => *seen += chunk.len() as u64,
                None if line.len() + chunk.len() > self.max_bytes => {
                    oversize = Some((line.len() + chunk.len()) as u64);
                    line = Vec::new();
                }
                None => line.extend_from_slice(chunk),
            }
            let consumed = done.unwrap_or(buf.len());
            self.inner.consume(consumed);
            if done.is_some() {
                return Ok(Some(match oversize {
                    Some(seen) => Frame::Oversize { seen },
                    None => Frame::Line(line),
                }));
            }
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// True for a line that carries no message at all (blank or only JSON whitespace).
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn frames(input: &[u8], max: usize, cap: usize) -> Vec<Frame> {
        let mut r = FrameReader::new(BufReader::with_capacity(cap, Cursor::new(input)), max);
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn splits_lines_across_buffer_boundaries() {
        let got = frames(b"{\"a\":1}\n{\"b\":2}\nlast", 100, 3);
        assert_eq!(
            got,
            vec![
                Frame::Line(b"{\"a\":1}".to_vec()),
                Frame::Line(b"{\"b\":2}".to_vec()),
                Frame::Line(b"last".to_vec())
            ]
        );
    }

    #[test]
    fn oversize_line_is_discarded_and_stream_resyncs() {
        let mut input = vec![b'A'; 1000];
        input.extend_from_slice(b"\n{}\n");
        let got = frames(&input, 100, 64);
        assert_eq!(
            got,
            vec![Frame::Oversize { seen: 1000 }, Frame::Line(b"{}".to_vec())]
        );
    }

    #[test]
    fn oversize_without_newline_ends_as_oversize() {
        let input = vec![b'A'; 5000];
        assert_eq!(
            frames(&input, 100, 256),
            vec![Frame::Oversize { seen: 5000 }]
        );
    }
}
