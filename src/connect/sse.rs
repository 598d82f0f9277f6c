//! Incremental Server-Sent-Events parser for the upstream's `text/event-stream` bodies.
//!
//! Bytes are fed as they arrive off the socket and each complete event comes out at once, so a
//! long stream (progress, server requests) reaches the client event by event and never sits in a
//! buffer. Only `data:` and `id:` fields matter to MCP; `event:`, `retry:` and comments are
//! read and ignored. Lines end with `\n`, `\r\n` or `\r` (the SSE grammar allows all three).

/// One dispatched event: its data lines joined with `\n`, and its `id` if it set one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub data: Vec<u8>,
    pub id: Option<String>,
}

/// Why the stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// One event (or one line) grew past the limit: a peer that never ends an event must not
    /// make us buffer without bound.
    TooLarge { limit: usize },
}

pub struct SseParser {
    max_event_bytes: usize,
    /// The current, unterminated line.
    line: Vec<u8>,
    /// Data of the event being built.
    data: Vec<u8>,
    has_data: bool,
    id: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` opening this chunk belongs to that line end.
    after_cr: bool,
}

impl SseParser {
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            max_event_bytes,
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            id: None,
            after_cr: false,
        }
    }

    /// Feeds one chunk; returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut events = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    if let Some(ev) = self.end_line() {
                        events.push(ev);
                    }
                }
                _ => {
                    self.line.push(b);
                    if self.line.len() + self.data.len() > self.max_event_bytes {
                        return Err(SseError::TooLarge {
                            limit: self.max_event_bytes,
                        });
                    }
                }
            }
        }
        Ok(events)
    }

    /// One line is complete: a blank line dispatches the event, anything else is a field.
    fn end_line(&mut self) -> Option<Event> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if !self.has_data {
                // An event without data (e.g. only an id, or only a comment) dispatches nothing.
                return None;
            }
            self.has_data = false;
            return Some(Event {
                data: std::mem::take(&mut self.data),
                id: self.id.clone(),
            });
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (&line[..], &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            // An id containing NUL is ignored, as the SSE spec says.
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
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
    fn events_split_across_chunks_and_line_ends() {
        let mut p = SseParser::new(1024);
        assert!(p.feed(b"event: message\r\nid: 7\r").unwrap().is_empty());
        assert!(p.feed(b"\ndata: {\"a\":").unwrap().is_empty());
        let ev = p
            .feed(b"1}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\n\n")
            .unwrap();
        assert_eq!(
            ev,
            vec![
                Event {
                    data: b"{\"a\":1}".to_vec(),
                    id: Some("7".into())
                },
                Event {
                    data: b"x\ny".to_vec(),
                    id: Some("7".into())
                }
            ]
        );
        assert_eq!(
            p.feed(b"data:z\r\r").unwrap(),
            vec![Event {
                data: b"z".to_vec(),
                id: Some("7".into())
            }]
        );
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut p = SseParser::new(8);
        assert!(p.feed(b"data: 12345678").is_err());
        let mut p = SseParser::new(8);
        assert!(p.feed(b"data: 1234\ndata: 5678\n").is_err());
    }
}
