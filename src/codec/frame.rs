//! Newline-delimited framing for the stdio transport, with a hard cap on buffering.
//!
//! A peer that never sends `\n` must not make us allocate without bound: once a line passes
//! `max_bytes` we stop storing it, discard through the next newline (resynchronising on the
//! following message) and report its size so the caller can answer and audit it.
//!
//! The reader owns its one buffer (no `BufReader` in front of it): a line that is wholly
//! buffered is handed out as a borrowed slice, without a copy or an allocation. A line longer
//! than the buffer grows it (up to `max_bytes + 1`); the buffer shrinks back once it is empty.
//! Callers that coalesce their writes ask [`FrameReader::has_buffered_input`], or pass a hook to
//! [`FrameReader::next_frame_ref`] that runs right before every read of the underlying stream
//! (the moment a pipe read may block).
//!
//! One scanner applies the limit; it is read blocking (`wrap`, `connect`) or async
//! ([`FrameReader::next_frame_async`], `serve`'s stdio upstream): the same frames either way.

use std::io::{self, Read};

use tokio::io::{AsyncRead, AsyncReadExt};

/// One thing read off a newline-delimited stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its terminating `\n`.
    Line(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded. `seen` counts what was read of it
    /// (capped at the point the stream ended or the newline came).
    Oversize { seen: u64 },
}

/// [`Frame`], with the line borrowed from the reader's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameRef<'a> {
    Line(&'a [u8]),
    Oversize { seen: u64 },
}

impl FrameRef<'_> {
    pub fn to_owned(&self) -> Frame {
        match self {
            FrameRef::Line(l) => Frame::Line(l.to_vec()),
            FrameRef::Oversize { seen } => Frame::Oversize { seen: *seen },
        }
    }
}

/// The buffer a reader starts with, and shrinks back to.
const INITIAL: usize = 64 * 1024;

/// Reads frames from `inner`, never holding more than `max_bytes` of one line.
pub struct FrameReader<R> {
    inner: R,
    max_bytes: usize,
    /// Storage; `buf[start..end]` is read but not yet handed out.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `buf[start..scanned]` is known to hold no newline.
    scanned: usize,
    /// Bytes of the current line already discarded because it passed the limit. A field, not a
    /// local of one call, so that the async reader (which returns to its executor between
    /// reads) and the blocking one share one definition of a frame.
    discarded: Option<u64>,
}

/// What the buffer yields next. Positions rather than a borrowed slice: the read loops decide
/// in a loop and borrow only once they are out of it.
enum Scan {
    Line {
        start: usize,
        end: usize,
        more: bool,
    },
    Oversize {
        seen: u64,
        more: bool,
    },
    /// No complete frame is buffered: read into `buf[end..]`, then scan again.
    Read,
    /// End of stream, nothing left.
    End,
}

impl<R> FrameReader<R> {
    pub fn new(inner: R, max_bytes: usize) -> Self {
        FrameReader {
            inner,
            max_bytes,
            buf: vec![0; INITIAL],
            start: 0,
            end: 0,
            scanned: 0,
            discarded: None,
        }
    }

    /// True when bytes are already buffered after the last frame handed out: the next call may
    /// return without reading (it reads, and may block, when they are only part of a line).
    pub fn has_buffered_input(&self) -> bool {
        self.start < self.end
    }

    /// The next frame already buffered, or `Scan::Read` with room made for the next read. The
    /// one place the size limit is applied, whichever way the bytes are read.
    #[inline]
    fn scan(&mut self) -> Scan {
        if let Some(i) = memchr(&self.buf[self.scanned..self.end]) {
            let nl = self.scanned + i;
            let line_start = self.start;
            self.start = nl + 1;
            self.scanned = self.start;
            let len = (nl - line_start) as u64;
            let more = self.start < self.end;
            return match self.discarded.take() {
                Some(seen) => Scan::Oversize {
                    seen: seen + len,
                    more,
                },
                None if nl - line_start > self.max_bytes => Scan::Oversize { seen: len, more },
                None => Scan::Line {
                    start: line_start,
                    end: nl,
                    more,
                },
            };
        }
        // No newline in what is buffered.
        if let Some(seen) = self.discarded.as_mut() {
            *seen += (self.end - self.start) as u64;
            self.start = self.end;
        } else if self.end - self.start > self.max_bytes {
            self.discarded = Some((self.end - self.start) as u64);
            self.start = self.end;
        }
        self.make_room();
        Scan::Read
    }

    /// `n` bytes were read into `buf[end..]`. At end of stream (`n == 0`), the last frame: a
    /// final line without `\n`, the rest of an oversize line, or `End`.
    #[inline]
    fn filled(&mut self, n: usize) -> Option<Scan> {
        if n == 0 {
            let (line_start, end) = (self.start, self.end);
            self.start = end;
            self.scanned = end;
            return Some(match self.discarded.take() {
                Some(seen) => Scan::Oversize { seen, more: false },
                None if line_start == end => Scan::End,
                None => Scan::Line {
                    start: line_start,
                    end,
                    more: false,
                },
            });
        }
        self.scanned = self.end;
        self.end += n;
        None
    }

    fn frame(&self, scan: Scan) -> Option<(FrameRef<'_>, bool)> {
        match scan {
            Scan::Line { start, end, more } => Some((FrameRef::Line(&self.buf[start..end]), more)),
            Scan::Oversize { seen, more } => Some((FrameRef::Oversize { seen }, more)),
            Scan::Read | Scan::End => None,
        }
    }
    /// Make space after `end` for the next read: drop what was handed out, move a partial line to
    /// the front, grow for a long line, shrink back when idle.
    ///
    /// A line longer than the initial buffer gets, once, a buffer with room for the longest
    /// allowed line (`max_bytes + 1`), allocated but not touched: only the part read into is
    /// initialised (a chunk at a time), so resident memory follows the line's real length and the
    /// line is copied once, not at every doubling.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
            if self.buf.capacity() > INITIAL {
                self.buf = vec![0; INITIAL];
            }
            return;
        }
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
            return;
        }
        // Full of one partial line (`end <= max_bytes`, or it would be oversize by now).
        if self.buf.len() == self.buf.capacity() {
            let cap = self.max_bytes.saturating_add(1).max(self.end + 1);
            let mut big = Vec::with_capacity(cap);
            big.extend_from_slice(&self.buf[..self.end]);
            self.buf = big;
        }
        let more = (self.buf.capacity() - self.buf.len()).min(INITIAL);
        self.buf.resize(self.buf.len() + more, 0);
    }
}

impl<R: Read> FrameReader<R> {
    /// The next frame, or `None` at end of stream. A final line without `\n` is still a frame.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        Ok(self.next_frame_ref(&mut || {})?.map(|(f, _)| f.to_owned()))
    }

    /// The next frame, borrowed from the buffer, and whether more input is already buffered
    /// behind it. `before_read` runs right before each read of the underlying stream, i.e.
    /// before this call may block: the place to flush coalesced output.
    pub fn next_frame_ref(
        &mut self,
        before_read: &mut dyn FnMut(),
    ) -> io::Result<Option<(FrameRef<'_>, bool)>> {
        let scan = loop {
            match self.scan() {
                Scan::Read => {}
                found => break found,
            }
            before_read();
            let n = loop {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if let Some(last) = self.filled(n) {
                break last;
            }
        };
        Ok(self.frame(scan))
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// [`FrameReader::next_frame`] over an async stream (`serve`'s stdio upstream): the same
    /// frames, the same limit and the same `Oversize` sizes, without a thread parked in `read`.
    pub async fn next_frame_async(&mut self) -> io::Result<Option<Frame>> {
        let scan = loop {
            match self.scan() {
                Scan::Read => {}
                found => break found,
            }
            let n = loop {
                match self.inner.read(&mut self.buf[self.end..]).await {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if let Some(last) = self.filled(n) {
                break last;
            }
        };
        Ok(self.frame(scan).map(|(f, _)| f.to_owned()))
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

    /// A reader that hands out at most `step` bytes per read, counting its reads.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn trickled(input: &[u8], max: usize, step: usize) -> Vec<Frame> {
        let mut r = FrameReader::new(Trickle { data: input, step }, max);
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn lines_split_across_reads_and_buffer_growth() {
        for step in [1, 3, 7, 4096, 1 << 20] {
            let long = vec![b'x'; 200_000];
            let mut input = b"{\"a\":1}\n".to_vec();
            input.extend_from_slice(&long);
            input.extend_from_slice(b"\n\n{\"b\":2}\nlast");
            let got = trickled(&input, 200_000, step);
            assert_eq!(
                got,
                vec![
                    Frame::Line(b"{\"a\":1}".to_vec()),
                    Frame::Line(long.clone()),
                    Frame::Line(Vec::new()),
                    Frame::Line(b"{\"b\":2}".to_vec()),
                    Frame::Line(b"last".to_vec())
                ],
                "step {step}"
            );
            // One byte more than the limit is oversize, whatever the read sizes.
            let got = trickled(&input, 199_999, step);
            assert_eq!(got[1], Frame::Oversize { seen: 200_000 }, "step {step}");
            assert_eq!(got[3], Frame::Line(b"{\"b\":2}".to_vec()), "step {step}");
        }
    }

    impl tokio::io::AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let n = self.step.min(buf.remaining()).min(self.data.len());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// The async reader (`serve`'s stdio upstream) cuts the same frames as the blocking one
    /// (`wrap`), oversize lines and their sizes included, whatever the read sizes.
    #[tokio::test(flavor = "current_thread")]
    async fn the_async_reader_frames_exactly_like_the_blocking_one() {
        let mut input = b"{\"a\":1}\n".to_vec();
        input.extend_from_slice(&[b'x'; 200_000]);
        input.extend_from_slice(b"\n\n{\"b\":2}\n");
        input.extend_from_slice(&[b'y'; 5000]);
        input.extend_from_slice(b"\nlast");
        for max in [100, 4999, 5000, 199_999, 200_000] {
            for step in [1, 7, 4096, 1 << 20] {
                let blocking = trickled(&input, max, step);
                let mut r = FrameReader::new(Trickle { data: &input, step }, max);
                let mut got = Vec::new();
                while let Some(f) = r.next_frame_async().await.unwrap() {
                    got.push(f);
                }
                assert_eq!(got, blocking, "max {max}, step {step}");
            }
        }
        // An oversize line cut off by the end of the stream.
        let tail = vec![b'A'; 5000];
        let mut r = FrameReader::new(
            Trickle {
                data: &tail,
                step: 3,
            },
            100,
        );
        assert_eq!(
            r.next_frame_async().await.unwrap(),
            Some(Frame::Oversize { seen: 5000 })
        );
        assert_eq!(r.next_frame_async().await.unwrap(), None);
    }

    #[test]
    fn oversize_inside_one_buffer() {
        let mut input = vec![b'A'; 5000];
        input.extend_from_slice(b"\n{}\n");
        assert_eq!(
            trickled(&input, 100, 1 << 16),
            vec![Frame::Oversize { seen: 5000 }, Frame::Line(b"{}".to_vec())]
        );
    }

    #[test]
    fn hook_runs_only_before_reads_and_reports_buffered_input() {
        let input = b"{\"a\":1}\n{\"b\":2}\n{\"c\"";
        let mut r = FrameReader::new(
            Trickle {
                data: input,
                step: 1 << 16,
            },
            100,
        );
        let mut reads = 0;
        let (f, more) = r.next_frame_ref(&mut || reads += 1).unwrap().unwrap();
        assert_eq!((f, more), (FrameRef::Line(b"{\"a\":1}"), true));
        assert!(r.has_buffered_input());
        let (f, more) = r.next_frame_ref(&mut || reads += 1).unwrap().unwrap();
        assert_eq!((f, more), (FrameRef::Line(b"{\"b\":2}"), true));
        assert_eq!(reads, 1, "two lines from one read");
        // Only part of a line is buffered: the next call reads (and would block) after the hook.
        let (f, more) = r.next_frame_ref(&mut || reads += 1).unwrap().unwrap();
        assert_eq!((f, more), (FrameRef::Line(b"{\"c\""), false));
        assert_eq!(reads, 2);
        assert!(!r.has_buffered_input());
        assert!(r.next_frame_ref(&mut || reads += 1).unwrap().is_none());
    }
}
