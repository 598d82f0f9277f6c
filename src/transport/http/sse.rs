//! Server-Sent Events: an incremental parser for upstream streams (events are handed on as soon
//! as their blank line arrives, never after the stream ends) and the writer for our own events.

use bytes::{Bytes, BytesMut};

/// One SSE event as received. `data` is the `data:` lines joined with `\n`, per the SSE spec.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<Vec<u8>>,
    pub retry: Option<String>,
}

impl Event {
    /// The event on the wire, with `data` replaced when given (a rewritten message).
    pub fn encode(&self, data: Option<&[u8]>) -> Bytes {
        let mut out = BytesMut::new();
        if let Some(id) = &self.id {
            push_field(&mut out, b"id", id.as_bytes());
        }
        if let Some(ev) = &self.event {
            push_field(&mut out, b"event", ev.as_bytes());
        }
        if let Some(retry) = &self.retry {
            push_field(&mut out, b"retry", retry.as_bytes());
        }
        if let Some(d) = data.or(self.data.as_deref()) {
            // A multi-line payload needs one `data:` line per line to survive re-parsing.
            for line in d.split(|&b| b == b'\n') {
                push_field(&mut out, b"data", line);
            }
        }
        out.extend_from_slice(b"\n");
        out.freeze()
    }
}

fn push_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\n");
}

/// One JSON-RPC message as an SSE `message` event (our own streams: stdio upstreams).
pub fn message(data: &[u8]) -> Bytes {
    Event {
        event: Some("message".into()),
        data: Some(data.to_vec()),
        ..Event::default()
    }
    .encode(None)
}

/// Incremental parser. Feed chunks as they arrive; complete events come back at once.
pub struct Parser {
    line: Vec<u8>,
    current: Event,
    /// Bytes buffered for the event being read; beyond `max` the stream is refused.
    size: usize,
    max: usize,
    /// The previous chunk ended in `\r`: a following `\n` belongs to the same line break.
    after_cr: bool,
}

/// An upstream event grew beyond the message size cap.
#[derive(Debug)]
pub struct TooLarge;

impl Parser {
    pub fn new(max: usize) -> Parser {
        Parser {
            line: Vec::new(),
            current: Event::default(),
            size: 0,
            max,
            after_cr: false,
        }
    }

    /// Consume a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, TooLarge> {
        let mut events = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(ev) = self.line_done(&line) {
                        events.push(ev);
                    }
                }
                _ => {
                    self.line.push(b);
                    self.size += 1;
                    if self.size > self.max {
                        return Err(TooLarge);
                    }
                }
            }
        }
        Ok(events)
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            self.size = 0;
            let ev = std::mem::take(&mut self.current);
            // A blank line after nothing but comments dispatches nothing.
            let empty = ev.id.is_none() && ev.event.is_none() && ev.data.is_none();
            return (!empty || ev.retry.is_some()).then_some(ev);
        }
        if line[0] == b':' {
            return None; // comment (upstream keep-alive): ours are added by our own stream
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let text = || String::from_utf8_lossy(value).into_owned();
        match name {
            b"data" => match &mut self.current.data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => self.current.data = Some(value.to_vec()),
            },
            b"id" if !value.contains(&0) => self.current.id = Some(text()),
            b"event" => self.current.event = Some(text()),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.current.retry = Some(text())
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = Parser::new(1024);
        assert!(p.push(b"id: 7\r\nevent: mess").unwrap().is_empty());
        let evs = p
            .push(b"age\r\ndata: {\"a\":\ndata: 1}\r\n\r\n: ping\n\n")
            .unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].id.as_deref(), Some("7"));
        assert_eq!(evs[0].event.as_deref(), Some("message"));
        assert_eq!(evs[0].data.as_deref(), Some(&b"{\"a\":\n1}"[..]));
        let again = Parser::new(1024)
            .push(&evs[0].encode(None))
            .unwrap()
            .remove(0);
        assert_eq!(again, evs[0]);
    }

    #[test]
    fn priming_event_without_data_is_kept() {
        let mut p = Parser::new(1024);
        let evs = p.push(b"id: abc\ndata:\n\n").unwrap();
        assert_eq!(evs[0].data.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn oversized_event_is_refused() {
        let mut p = Parser::new(8);
        assert!(p.push(b"data: 0123456789\n\n").is_err());
    }

    #[test]
    fn message_event_shape() {
        assert_eq!(&message(b"{}")[..], b"event: message\ndata: {}\n\n");
    }
}
