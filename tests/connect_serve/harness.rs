//! The two real binaries end to end: `mcp-warden serve` in front of the example echo server, and
//! `mcp-warden connect` driven line by line as a desktop client would (answers are awaited before
//! the next request, so the order the server sees is the order written here).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_warden::sig::keys::{public_key_to_string, signing_key_from_pem, signing_key_to_pem};
use mcp_warden::sig::{http_scheme, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::support;

/// The desktop client's key (connect signs with it; serve trusts it).
pub fn client_key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// serve's config: signatures enforced for the client key, responses signed, admin on a free
/// port, and the echo server behind it (`upstream`: its `command = …` or `url = …` line).
pub fn serve_config(upstream: &str) -> String {
    let client = public_key_to_string(&client_key().verifying_key());
    format!(
        "[signatures]\nmode = \"enforce\"\n\n[identity]\nsign_responses = true\n\n\
         [[identity.trusted_keys]]\nname = \"desktop\"\npublic_key = {client:?}\nrole = \"client\"\n\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\n[[servers]]\nname = \"echo\"\n{upstream}\n"
    )
}

/// The example echo server as a stdio upstream.
pub fn stdio_echo() -> String {
    format!(
        "command = [{:?}]",
        support::echo_server_bin().to_string_lossy()
    )
}

/// Reads a child's stderr into a shared log; sends the addresses it announces.
fn watch(stderr: impl Read + Send + 'static) -> (Arc<Mutex<String>>, Receiver<(String, String)>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            for tag in ["listening on http://", "admin on http://"] {
                if let Some(a) = line.split(tag).nth(1) {
                    let _ = tx.send((tag.to_owned(), a.trim().to_owned()));
                }
            }
            sink.lock().expect("log").push_str(&(line + "\n"));
        }
    });
    (log, rx)
}

/// serve (`support::serve`) with its state dir.
pub struct Serve {
    proc: support::serve::ServeProc,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub state: tempfile::TempDir,
    pub log: Arc<Mutex<String>>,
}

impl Serve {
    pub fn start() -> Serve {
        Serve::with(&stdio_echo())
    }

    /// With another upstream line (see [`serve_config`]).
    pub fn with(upstream: &str) -> Serve {
        let state = tempfile::tempdir().expect("tempdir");
        let cfg = state.path().join("proxy.toml");
        std::fs::write(&cfg, serve_config(upstream)).expect("config");
        let proc = support::serve::ServeProc::start(&cfg, state.path(), None, &[]);
        Serve {
            addr: proc.addr,
            admin: proc.admin,
            log: proc.log.clone(),
            proc,
            state,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The identity key serve created in its state dir on first start.
    pub fn key(&self) -> VerifyingKey {
        let pem = std::fs::read_to_string(self.state.path().join("identity.pem")).expect("key");
        signing_key_from_pem(&pem).expect("pem").verifying_key()
    }
}

/// A state dir for connect holding the client key, and `proxy.toml` when given.
pub fn connect_state(config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = signing_key_to_pem(&client_key()).expect("pem");
    std::fs::write(dir.path().join("identity.pem"), pem.as_bytes()).expect("key");
    if let Some(c) = config {
        std::fs::write(dir.path().join("proxy.toml"), c).expect("config");
    }
    dir
}

pub struct Connect {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub log: Arc<Mutex<String>>,
}

impl Connect {
    pub fn start(url: &str, state: &Path) -> Connect {
        let mut child = Command::new(support::warden_bin())
            .args(["connect", url, "--server", "echo"])
            .env("MCP_WARDEN_STATE", state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn connect");
        let (log, _) = watch(child.stderr.take().expect("stderr"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Connect {
            stdin: child.stdin.take(),
            child,
            lines,
            log,
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    }

    /// The next stdout line: it must be one JSON-RPC message (stdout carries MCP only).
    pub fn recv(&self) -> (String, Value) {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no answer; stderr:\n{}", self.log.lock().expect("log")));
        let v = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout is not MCP: {line:?}: {e}"));
        (line, v)
    }

    /// Close stdin, wait for the exit; what else reached stdout (must be nothing).
    pub fn finish(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "connect failed: {}",
            self.log.lock().expect("log")
        );
        self.lines.try_iter().collect()
    }
}

/// One HTTP/1.1 request on a fresh connection: status and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, String) {
    let r = support::raw_http::exchange(addr, method, path, headers, body, Duration::from_secs(20));
    (r.status, r.body)
}

/// The four `X-MCP-*` headers of the client key over `body`, for audience `echo`.
pub fn signed(body: &[u8], n: u8) -> Vec<(String, String)> {
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([n; 16]);
    http_scheme::sign(&client_key(), "echo", body, now(), &nonce)
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn relay_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/connect_serve/tamper_relay.py")
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Python helper that prints its port on the first line; the process and the port.
fn python_server(args: &[&std::ffi::OsStr]) -> (Proc, u16) {
    let mut child = Command::new("python3")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    (Proc(child), line.trim().parse().expect("port number"))
}

/// The recording HTTP echo upstream of the serve tests (`tests/http/echo_upstream.py`): a JSON
/// answer per request; its endpoint URL.
pub fn http_echo(record: &Path) -> (Proc, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/http/echo_upstream.py");
    let (p, port) = python_server(&[script.as_os_str(), record.as_os_str()]);
    (p, format!("http://127.0.0.1:{port}/mcp"))
}

/// The tampering relay in front of `upstream`; its address.
pub fn tamper_relay(upstream: SocketAddr) -> (Proc, SocketAddr) {
    let target = upstream.to_string();
    let script = relay_script();
    let (p, port) = python_server(&[script.as_os_str(), target.as_ref()]);
    (p, SocketAddr::from(([127, 0, 0, 1], port)))
}
