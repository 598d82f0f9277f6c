//! Running `mcp-warden connect` as a desktop client would: a state dir with the client's key,
//! lines on stdin, stdout parsed (it must carry MCP only).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mcp_warden::sig::keys::signing_key_to_pem;
use mcp_warden::sig::SigningKey;
use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn client_key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

/// A state dir holding the client's identity key (and `proxy.toml` when given).
pub fn state(config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = signing_key_to_pem(&client_key()).expect("pem");
    std::fs::write(dir.path().join("identity.pem"), pem.as_bytes()).expect("key");
    if let Some(c) = config {
        std::fs::write(dir.path().join("proxy.toml"), c).expect("config");
    }
    dir
}

pub struct Run {
    pub out: Vec<Value>,
    pub raw_out: String,
    pub err: String,
}

/// Feeds `lines` to `connect`, closes stdin, and collects what came out.
pub fn connect(url: &str, server: &str, state: &Path, lines: &[&str]) -> Run {
    connect_with(&[url, "--server", server], state, lines)
}

/// `connect` with these arguments.
pub fn connect_with(args: &[&str], state: &Path, lines: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-warden"))
        .arg("connect")
        .args(args)
        .env("MCP_WARDEN_STATE", state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn connect");
    let mut stdin = child.stdin.take().expect("stdin");
    for l in lines {
        stdin.write_all(l.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let raw_out = String::from_utf8(out.stdout).expect("utf8 stdout");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let parsed = raw_out
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout is not MCP: {l:?}: {e}"))
        })
        .collect();
    assert!(out.status.success(), "connect failed: {err}");
    Run {
        out: parsed,
        raw_out,
        err,
    }
}

pub fn by_id(run: &Run, id: i64) -> &Value {
    run.out.iter().find(|v| v["id"] == id).unwrap_or_else(|| {
        panic!(
            "no answer to id {id} in {}\nstderr: {}",
            run.raw_out, run.err
        )
    })
}

pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

pub fn call(id: i64, tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
    )
}

/// `connect` kept running: lines in one at a time, answers read as they come (for calls that
/// wait on something outside, like a human's approval).
pub struct Live {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Live {
    pub fn start(url: &str, server: &str, state: &Path) -> Live {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-warden"))
            .args(["connect", url, "--name", server])
            .env("MCP_WARDEN_STATE", state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn connect");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Live {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    }

    /// The next line on stdout (MCP only), within 20 s.
    pub fn recv(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("an answer from connect");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout is not MCP: {line:?}: {e}"))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
