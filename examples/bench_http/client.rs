//! A minimal HTTP/1.1 keep-alive client over `std::net::TcpStream` (one request in flight per
//! connection, one write per request), and an MCP session on top of it: `initialize`,
//! `notifications/initialized`, `tools/list`, then `tools/call echo` round trips. Kept small so
//! that the benchmark measures the server side, not the client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::Res;

/// The protocol revision the benchmark speaks (the legacy era: sessions and a GET stream).
pub const VERSION: &str = "2025-06-18";

pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
    path: String,
    out: Vec<u8>,
    line: Vec<u8>,
}

/// One response. For an event stream only the head is read: the body stays on the connection.
pub struct Resp {
    pub status: u16,
    pub session: Option<String>,
    pub event_stream: bool,
    pub body: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr, path: &str) -> Res<Conn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let r = s.try_clone().map_err(|e| e.to_string())?;
        Ok(Conn {
            reader: BufReader::with_capacity(16 * 1024, r),
            writer: s,
            host: addr.to_string(),
            path: path.to_owned(),
            out: Vec::with_capacity(1024),
            line: Vec::with_capacity(256),
        })
    }

    /// Send one request and read its answer (an event stream: its head only).
    pub fn request(
        &mut self,
        method: &str,
        session: Option<&str>,
        accept: &str,
        body: &[u8],
    ) -> Res<Resp> {
        let o = &mut self.out;
        o.clear();
        let _ = write!(
            o,
            "{method} {} HTTP/1.1\r\nHost: {}\r\nAccept: {accept}\r\n",
            self.path, self.host
        );
        if let Some(s) = session {
            let _ = write!(
                o,
                "Mcp-Session-Id: {s}\r\nMCP-Protocol-Version: {VERSION}\r\n"
            );
        }
        if method == "POST" {
            let _ = write!(
                o,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
        }
        o.extend_from_slice(b"\r\n");
        o.extend_from_slice(body);
        self.writer
            .write_all(o)
            .map_err(|e| format!("write: {e}"))?;
        self.read_response()
    }

    fn read_line(&mut self) -> Res<&str> {
        self.line.clear();
        match self.reader.read_until(b'\n', &mut self.line) {
            Ok(0) => Err("connection closed by the server".into()),
            Ok(_) => std::str::from_utf8(&self.line)
                .map(str::trim_end)
                .map_err(|_| "non-UTF-8 response head".into()),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn read_response(&mut self) -> Res<Resp> {
        let status_line = self.read_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut resp = Resp {
            status,
            session: None,
            event_stream: false,
            body: Vec::new(),
        };
        let (mut length, mut chunked) = (None, false);
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("mcp-session-id") {
                resp.session = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("content-type") {
                resp.event_stream = value.starts_with("text/event-stream");
            }
        }
        if resp.event_stream {
            return Ok(resp);
        }
        if chunked {
            loop {
                let size = self.read_line()?;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or(""), 16)
                    .map_err(|_| format!("bad chunk size {size:?}"))?;
                let at = resp.body.len();
                resp.body.resize(at + size, 0);
                self.reader
                    .read_exact(&mut resp.body[at..])
                    .map_err(|e| format!("read: {e}"))?;
                self.read_line()?;
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            resp.body.resize(n, 0);
            self.reader
                .read_exact(&mut resp.body)
                .map_err(|e| format!("read: {e}"))?;
        }
        Ok(resp)
    }
}

/// An MCP session over one keep-alive connection.
pub struct Session {
    conn: Conn,
    pub id: String,
    next_id: u64,
    text: String,
    body: Vec<u8>,
}

/// JSON only: `serve` answers a stdio upstream's result as an event stream when the client
/// accepts one (`--stdio-upstream`), and this client reads JSON bodies; HTTP upstreams (and the
/// echo server) answer JSON either way.
const ACCEPT_POST: &str = "application/json";

impl Session {
    /// `initialize`, `notifications/initialized`, and (with `list`) `tools/list`: a pinning
    /// proxy refuses calls to tools it has never seen listed.
    pub fn open(conn: Conn, text: &str, list: bool) -> Res<Session> {
        let mut conn = conn;
        let init = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"{VERSION}\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"bench_http\",\"version\":\"1.0.0\"}}}}}}"
        );
        let r = conn.request("POST", None, ACCEPT_POST, init.as_bytes())?;
        check(&r, 0).map_err(|e| format!("initialize: {e}"))?;
        let id = r
            .session
            .ok_or("initialize: no Mcp-Session-Id in the answer")?;
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let r = conn.request("POST", Some(&id), ACCEPT_POST, note)?;
        if r.status != 202 {
            return Err(format!("notifications/initialized: HTTP {}", r.status));
        }
        let mut s = Session {
            conn,
            id,
            next_id: 1,
            text: text.to_owned(),
            body: Vec::with_capacity(256),
        };
        if list {
            let r = s.conn.request(
                "POST",
                Some(&s.id),
                ACCEPT_POST,
                br#"{"jsonrpc":"2.0","id":0,"method":"tools/list"}"#,
            )?;
            check(&r, 0).map_err(|e| format!("tools/list: {e}"))?;
        }
        Ok(s)
    }

    /// One `tools/call echo` round trip; the answer must be the result for this call's id.
    pub fn call(&mut self) -> Res<()> {
        let id = self.next_id;
        self.next_id += 1;
        self.body.clear();
        let _ = write!(
            self.body,
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"{}\"}}}}}}",
            self.text
        );
        let r = self
            .conn
            .request("POST", Some(&self.id), ACCEPT_POST, &self.body)?;
        check(&r, id).map_err(|e| format!("tools/call {id}: {e}"))
    }

    pub fn into_conn(self) -> Conn {
        self.conn
    }

    /// Open the session's GET stream on a connection of its own; returns it, held open.
    pub fn open_stream(&self, addr: SocketAddr, path: &str) -> Res<Conn> {
        let mut c = Conn::connect(addr, path)?;
        let r = c.request("GET", Some(&self.id), "text/event-stream", b"")?;
        if r.status != 200 || !r.event_stream {
            return Err(format!(
                "GET stream: HTTP {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        Ok(c)
    }
}

/// A 200 JSON answer that is the result (not an error) for `want`, found without a full parse
/// (the answers carry exactly one top-level `"id":`, before any nested one).
fn check(r: &Resp, want: u64) -> Res<()> {
    let text = String::from_utf8_lossy(&r.body);
    if r.status != 200 {
        return Err(format!("HTTP {}: {}", r.status, text.trim_end()));
    }
    if text.contains("\"error\"") || !text.contains("\"result\"") {
        return Err(format!("not a result: {}", text.trim_end()));
    }
    let at = text
        .find("\"id\":")
        .ok_or_else(|| format!("answer without id: {text}"))?;
    let digits: String = text[at + 5..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.parse::<u64>() {
        Ok(got) if got == want => Ok(()),
        _ => Err(format!("expected the answer to id {want}: {text}")),
    }
}
