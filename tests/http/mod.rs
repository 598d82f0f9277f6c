//! Harness for `mcp-warden serve`: the real binary on a free port with its state in a temp dir,
//! a raw HTTP/1.1 client (edge tests need exact bytes on the wire), and the upstreams the tests
//! put behind it.
#![allow(dead_code)]

use crate::support::raw_http::dechunk;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;

mod modern_era;
pub mod peers;
pub mod signing;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running `mcp-warden serve` (`support::serve`), its audit trail in its temp dir.
pub struct Serve {
    proc: support::serve::ServeProc,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub stderr: Arc<Mutex<String>>,
}

impl Serve {
    /// Start with `config` (TOML; `listen` is forced to a free loopback port) and extra env.
    pub fn start(config: &str, env: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("proxy.toml");
        std::fs::write(&cfg, config).expect("config");
        let audit = dir.path().join("audit.jsonl");
        let proc =
            support::serve::ServeProc::start(&cfg, &dir.path().join("state"), Some(&audit), env);
        Serve {
            addr: proc.addr,
            stderr: proc.log.clone(),
            proc,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The audit records written so far (the flusher runs every ≤100 ms).
    pub fn audit(&self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(300));
        let text = std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// The `serve` process's threads now (`/proc/PID/task`).
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.proc.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// An answer as the raw client read it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One request on a fresh connection (`Connection: close`), the whole answer read back.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

/// Read a response until the connection closes; chunked bodies are decoded.
pub fn read_response(s: &mut TcpStream) -> Resp {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("")[9..12].parse().expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "upstream on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn everything_js() -> PathBuf {
    repo().join("tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// server-everything in Streamable HTTP mode on a free port; its endpoint URL.
pub fn everything_http() -> (Proc, String) {
    let port = free_port();
    let child = Command::new("node")
        .arg(everything_js())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server-everything");
    let p = Proc(child);
    wait_for_port(port);
    (p, format!("http://127.0.0.1:{port}/mcp"))
}

/// The recording echo upstream (`tests/http/echo_upstream.py`); its URL and record file.
pub fn echo_http(record: &Path) -> (Proc, String) {
    let mut child = Command::new("python3")
        .arg(repo().join("tests/http/echo_upstream.py"))
        .arg(record)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start echo upstream");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port: u16 = line.trim().parse().expect("port number");
    (Proc(child), format!("http://127.0.0.1:{port}/mcp"))
}

pub fn peers_installed() -> bool {
    repo()
        .join("tests/peers/node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
        && repo().join(".venv-peers/bin/python").exists()
}

/// Run a peer client scenario against `url`; its transcript.
pub fn transcript(client: &str, url: &str) -> String {
    let mut cmd = match client {
        "ts" => {
            let mut c = Command::new("node");
            c.arg(repo().join("tests/peers/ts_client.mjs"));
            c
        }
        _ => {
            let mut c = Command::new(repo().join(".venv-peers/bin/python"));
            c.arg(repo().join("tests/peers/py_client.py"));
            c
        }
    };
    let out = cmd
        .args(["everything", "--url", url])
        .output()
        .expect("run peer client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{client} against {url} failed ({}):\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

// ------------------------------------------------------------------ shared steps

pub const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
pub const JSON_ONLY: (&str, &str) = ("Accept", "application/json");

pub fn echo_config(extra: &str) -> String {
    format!(
        "{extra}\n[[servers]]\nname = \"echo\"\ncommand = [{:?}]\n",
        support::echo_server_bin().to_string_lossy()
    )
}

pub fn audit_events(serve: &Serve) -> Vec<String> {
    serve
        .audit()
        .iter()
        .map(|r| r["event"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Open a legacy session on `path`; its id.
pub fn initialize(serve: &Serve, path: &str, extra: &[(&str, &str)]) -> String {
    let mut headers = vec![JSON_ONLY];
    headers.extend_from_slice(extra);
    let r = request(serve.addr, "POST", path, &headers, INIT.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("mcp-session-id").expect("session id").to_owned()
}

/// POST a modern-era (2026-07-28) `tools/call` of `hang` (a call the server never answers)
/// with `meta` in its params, and read the stream's head (200): the open stream is returned,
/// its process held for as long as it stays open.
pub fn open_hanging_modern_call(
    addr: std::net::SocketAddr,
    meta: &str,
    read_timeout: Duration,
) -> TcpStream {
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{{"name":"hang","arguments":{{}},{meta}}}}}"#
    );
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(read_timeout)).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: hang\r\nContent-Length: {}\r\n\r\n{call}",
        call.len()
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = s.read(&mut head).unwrap();
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    s
}

/// A modern-era (2026-07-28) `tools/list` POSTed to `/mcp`, answered 200 (asserted).
pub fn modern_tools_list(serve: &Serve) -> Resp {
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
    let list = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{meta}}}}}"#);
    let r = request(
        serve.addr,
        "POST",
        "/mcp",
        &[
            JSON_ONLY,
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/list"),
        ],
        list.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r
}
