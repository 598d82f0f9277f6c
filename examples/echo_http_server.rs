//! A minimal, fast MCP server over Streamable HTTP for the HTTP benchmark
//! (`examples/bench_http/`): HTTP/1.1 keep-alive, one thread per connection, JSON answers only.
//! It is deliberately tiny so that a benchmark measures the proxy, not the server.
//!
//! - `POST` `initialize` → 200 JSON with an `Mcp-Session-Id`; notifications → 202; `ping`,
//!   `tools/list` (one tool, `echo`) and `tools/call echo` (answers with its `text` argument) →
//!   200 JSON; other methods → a -32601 error. Every POST but `initialize` must carry a session
//!   id this server gave out (else 404).
//! - `GET` with `Accept: text/event-stream` → 200 `text/event-stream`, chunked, held open and
//!   idle until the client hangs up (the server-message stream of a session that has nothing to
//!   say). `DELETE` → 200.
//!
//! Usage: `echo_http_server [--listen ADDR]` (default `127.0.0.1:0`); prints
//! `listening on http://ADDR` on stderr once it accepts connections.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use serde_json::{json, Value};

/// Session ids are `echo-<n>`; a request naming one we never gave out gets 404.
static SESSIONS: AtomicU64 = AtomicU64::new(0);
const SESSION_PREFIX: &str = "echo-";
/// Requests with more header bytes or a larger body than this are refused.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

fn main() -> io::Result<()> {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            _ => {
                eprintln!("usage: echo_http_server [--listen ADDR]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(&listen)?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // Small stacks: the benchmark holds a thousand idle event streams open.
        let spawned = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
            let _ = serve_connection(stream);
        });
        if let Err(e) = spawned {
            eprintln!("echo_http_server: cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

/// One request's head, as far as this server cares.
#[derive(Default)]
struct Head {
    method: String,
    content_length: usize,
    session: Option<String>,
    accepts_sse: bool,
    close: bool,
}

fn serve_connection(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(16 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut line = Vec::with_capacity(256);
    let mut body = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    loop {
        let Some(head) = read_head(&mut reader, &mut line)? else {
            return Ok(());
        };
        if head.content_length > MAX_BODY {
            return respond(&mut writer, &mut out, 413, &[], b"", true);
        }
        body.resize(head.content_length, 0);
        reader.read_exact(&mut body)?;
        let known = head
            .session
            .as_deref()
            .is_some_and(|s| s.starts_with(SESSION_PREFIX));
        match head.method.as_str() {
            "POST" => post(&mut writer, &mut out, &head, known, &body)?,
            "GET" if !known => respond(&mut writer, &mut out, 404, &[], b"", head.close)?,
            "GET" if !head.accepts_sse => respond(&mut writer, &mut out, 406, &[], b"", true)?,
            "GET" => {
                writer.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n",
                )?;
                // Nothing to say: wait until the client hangs up.
                let mut sink = [0u8; 512];
                while reader.read(&mut sink)? > 0 {}
                return Ok(());
            }
            "DELETE" => respond(&mut writer, &mut out, 200, &[], b"", head.close)?,
            _ => respond(&mut writer, &mut out, 405, &[], b"", head.close)?,
        }
        if head.close {
            return Ok(());
        }
    }
}

/// The request line and headers; `None` at a clean end of the connection.
fn read_head(reader: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> io::Result<Option<Head>> {
    let mut head = Head::default();
    let mut total = 0;
    let mut first = true;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', line)?;
        if n == 0 {
            return if first && total == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        if first {
            head.method = text.split(' ').next().unwrap_or("").to_owned();
            first = false;
            continue;
        }
        if text.is_empty() {
            return Ok(Some(head));
        }
        let Some((name, value)) = text.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value
                .parse()
                .map_err(|_| io::Error::other("bad content-length"))?;
        } else if name.eq_ignore_ascii_case("mcp-session-id") {
            head.session = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("accept") {
            head.accepts_sse |= value.contains("text/event-stream");
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(io::Error::other("chunked request bodies are not supported"));
        }
    }
}

fn post(
    w: &mut TcpStream,
    out: &mut Vec<u8>,
    head: &Head,
    known: bool,
    body: &[u8],
) -> io::Result<()> {
    let Ok(msg) = serde_json::from_slice::<Value>(body) else {
        return respond(w, out, 400, &[], b"", head.close);
    };
    let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
    if method != "initialize" && !known {
        return respond(w, out, 404, &[], b"", head.close);
    }
    let Some(id) = msg.get("id") else {
        // A notification (or a response to a server request): accepted, nothing to say.
        return respond(w, out, 202, &[], b"", head.close);
    };
    let mut session = None;
    let answer = match method {
        "initialize" => {
            let n = SESSIONS.fetch_add(1, Ordering::Relaxed) + 1;
            session = Some(format!("{SESSION_PREFIX}{n}"));
            let version = msg["params"]["protocolVersion"]
                .as_str()
                .unwrap_or("2025-06-18");
            json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "echo-http", "version": "1.0.0"}
            }})
        }
        "ping" => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
        "tools/list" => json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{
            "name": "echo",
            "description": "Echo the text back",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        }]}}),
        "tools/call" if msg["params"]["name"] == "echo" => {
            let text = msg["params"]["arguments"]["text"].as_str().unwrap_or("");
            json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}]}})
        }
        _ => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}})
        }
    };
    let bytes = serde_json::to_vec(&answer).map_err(io::Error::other)?;
    let extra: Vec<(&str, &str)> = session
        .as_deref()
        .map(|s| vec![("Mcp-Session-Id", s)])
        .unwrap_or_default();
    respond(w, out, 200, &extra, &bytes, head.close)
}

/// Write one whole response (JSON when there is a body) in a single write.
fn respond(
    w: &mut TcpStream,
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        413 => "Payload Too Large",
        _ => "Error",
    };
    out.clear();
    write!(out, "HTTP/1.1 {status} {reason}\r\n")?;
    if !body.is_empty() {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    write!(out, "Content-Length: {}\r\n\r\n", body.len())?;
    out.extend_from_slice(body);
    w.write_all(out)
}
