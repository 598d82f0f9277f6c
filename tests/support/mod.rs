//! Test harness: runs the real `mcp-warden` binary in front of the example echo server, feeds
//! it bytes as a client would, and reads back what the client got, what the upstream really
//! received (the server's own record), and the audit trail.
#![allow(dead_code)]

pub mod raw_http;
pub mod serve;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::Value;

pub fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcp-warden"))
}

/// The example echo server, built by `cargo test` next to the binary.
pub fn echo_server_bin() -> PathBuf {
    let bin = warden_bin();
    let dir = bin.parent().expect("binary dir");
    let path = dir.join("examples").join("echo_server");
    assert!(
        path.exists(),
        "{} missing: run `cargo build --examples`",
        path.display()
    );
    path
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// One `mcp-warden wrap` process with its state in a temp dir.
pub struct Wrapped {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Vec<u8>>,
    pub dir: tempfile::TempDir,
}

#[derive(Default)]
pub struct Options {
    /// `{tool: [lines]}` for the echo server's script hook.
    pub script: Option<Value>,
    pub config: Option<String>,
    pub extra_env: Vec<(String, String)>,
}

impl Wrapped {
    pub fn start(opts: Options) -> Wrapped {
        start_upstream(opts, "echo", &[echo_server_bin().into_os_string()])
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to proxy");
        stdin.flush().expect("flush");
    }

    pub fn send(&mut self, msg: &Value) {
        let mut bytes = serde_json::to_vec(msg).expect("json");
        bytes.push(b'\n');
        self.send_raw(&bytes);
    }

    /// The next line the client receives, or None after `timeout`.
    pub fn recv_raw(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.lines.recv_timeout(timeout).ok()
    }

    pub fn recv(&self) -> Value {
        let line = self
            .recv_raw(Duration::from_secs(10))
            .expect("a reply within 10 s");
        serde_json::from_slice(&line).unwrap_or_else(|e| {
            panic!(
                "client got non-JSON {:?}: {e}",
                String::from_utf8_lossy(&line)
            )
        })
    }

    /// Do the legacy handshake.
    pub fn initialize(&mut self) {
        self.initialize_with(serde_json::json!({}));
    }

    /// The legacy handshake, declaring client `capabilities` (server requests for anything
    /// undeclared never reach the client).
    pub fn initialize_with(&mut self, capabilities: Value) {
        self.send(&serde_json::json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":capabilities,"clientInfo":{"name":"t","version":"1"}}}));
        let r = self.recv();
        assert_eq!(r["id"], "init");
        self.send(&serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        // List tools as a client does before calling them: the proxy pins them on first use.
        self.send(&serde_json::json!({"jsonrpc":"2.0","id":"list","method":"tools/list"}));
        let r = self.recv();
        assert!(
            r["result"]["tools"].is_array(),
            "tools/list through the proxy: {r}"
        );
    }

    /// Round-trip a ping: proves the session is alive and everything before it was handled.
    pub fn ping(&mut self, id: &str) {
        self.send(&serde_json::json!({"jsonrpc":"2.0","id":id,"method":"ping"}));
        loop {
            let r = self.recv();
            if r["id"] == id {
                assert_eq!(r["result"], serde_json::json!({}));
                return;
            }
        }
    }

    /// Close stdin and wait for the proxy to exit; returns its exit code.
    pub fn finish(&mut self) -> i32 {
        self.stdin.take();
        let status = self.child.wait().expect("wait");
        status.code().unwrap_or(-1)
    }

    /// Every line the upstream server received, byte for byte.
    pub fn upstream(&self) -> Vec<Vec<u8>> {
        let bytes = std::fs::read(self.dir.path().join("upstream.log")).unwrap_or_default();
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// The audit records written so far (the proxy flushes within 100 ms).
    pub fn audit(&self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(250));
        let text = std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Wrapped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Like [`Wrapped::start`], but for any upstream command line and server name (the echo
/// server's `ECHO_SCRIPT` / `ECHO_RECORD` hooks are set all the same, for servers that honour
/// them, e.g. `tests/hostile/server.py`). `extra_env` may override `MCP_WARDEN_STATE` to share
/// one state dir (pins, trust, approvals) between sessions.
pub fn start_upstream(opts: Options, server: &str, argv: &[std::ffi::OsString]) -> Wrapped {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(warden_bin());
    cmd.arg("wrap").arg("--server").arg(server);
    if let Some(cfg) = &opts.config {
        let p = dir.path().join("proxy.toml");
        std::fs::write(&p, cfg).expect("write config");
        cmd.arg("--config").arg(p);
    }
    cmd.arg("--audit-file").arg(dir.path().join("audit.jsonl"));
    cmd.arg("--").args(argv);
    cmd.env("MCP_WARDEN_STATE", dir.path().join("state"));
    // Created here: `dir` is an ancestor of the state dir, where the Landlock sandbox lets the
    // server write existing files but not create new ones.
    std::fs::write(dir.path().join("upstream.log"), b"").expect("upstream log");
    cmd.env("ECHO_RECORD", dir.path().join("upstream.log"));
    if let Some(script) = &opts.script {
        let p = dir.path().join("script.json");
        std::fs::write(&p, serde_json::to_vec(script).expect("script")).expect("write script");
        cmd.env("ECHO_SCRIPT", p);
    }
    for (k, v) in &opts.extra_env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn mcp-warden");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stdin = child.stdin.take();
    Wrapped {
        child,
        stdin,
        lines: rx,
        dir,
    }
}
