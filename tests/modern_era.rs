//! The modern MCP era (protocol 2026-07-28: stateless, `server/discover`, results with
//! `resultType`, multi round-trip requests answered `input_required` and retried with
//! `inputResponses` + `requestState`) passes through `mcp-warden wrap` intact.
//!
//! - `rmcp_discover_client_through_wrap_equals_direct`: rmcp 3.11 as both peers (the
//!   `rmcp_server` example and an rmcp client in `ClientLifecycleMode::Discover`) — discover,
//!   list tools, call tools, and drive an MRTR tool to completion; everything the client sees
//!   through the proxy equals what it sees directly, the upstream received and sent the very same
//!   bytes in both runs, and the audit trail shows a modern-era session.
//! - `mrtr_raw_lines_through_wrap_are_byte_identical`: raw client lines (with odd-but-valid bytes)
//!   against the real rmcp server: `server/discover`, `tools/call` → `input_required`, retry with
//!   `inputResponses` → complete; the bytes the server read equal the bytes the client wrote, and
//!   the bytes the client read equal the bytes the server wrote.
//! - `scripted_input_required_with_odd_bytes_is_forwarded_verbatim`: a scripted upstream answers
//!   with an `input_required` result full of bytes a re-serialiser would change (key order,
//!   `\u` escapes, a 20-digit integer, `1.0e2`, unknown fields); the client gets it verbatim and
//!   the retry reaches the upstream verbatim.

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, Implementation, InitializeRequestParams, ProtocolVersion,
};
use rmcp::service::{RequestContext, RoleClient};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData};
use serde_json::{json, Value};

const MODERN: &str = "2026-07-28";
const SESSION_LIMIT: Duration = Duration::from_secs(15);

/// The rmcp example server, built by `cargo test` next to the binary.
fn rmcp_server_bin() -> PathBuf {
    let bin = support::warden_bin();
    let path = bin
        .parent()
        .expect("binary dir")
        .join("examples")
        .join("rmcp_server");
    assert!(
        path.exists(),
        "{} missing: run `cargo build --examples`",
        path.display()
    );
    path
}

fn read_audit(path: &Path) -> Vec<Value> {
    // The proxy flushes its audit trail within 100 ms (and on exit).
    std::thread::sleep(Duration::from_millis(250));
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("audit file {} unreadable: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// The message records of the audit trail must show a modern session that started with
/// `server/discover` and called `tools` — never a legacy one.
fn assert_modern_audit(audit: &[Value], tools: &[&str]) {
    // Every record about a relayed message (whatever its event: `message`, `auth.unsigned`,
    // `capability.first_pin`, …) carries a direction.
    let messages: Vec<&Value> = audit
        .iter()
        .filter(|r| r["direction"] == "client_to_server" || r["direction"] == "server_to_client")
        .collect();
    assert!(
        !messages.is_empty(),
        "no message records in the audit trail: {audit:#?}"
    );
    assert!(
        messages.iter().any(|r| r["era"] == "modern"),
        "no audit record has \"era\":\"modern\": {messages:#?}"
    );
    assert!(
        !messages.iter().any(|r| r["era"] == "legacy"),
        "a modern session was audited as legacy: {messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|r| r["method"] == "server/discover" && r["direction"] == "client_to_server"),
        "no client→server server/discover record: {messages:#?}"
    );
    for tool in tools {
        assert!(
            messages
                .iter()
                .any(|r| r["method"] == "tools/call" && r["tool"] == *tool),
            "no tools/call record for tool {tool}: {messages:#?}"
        );
    }
    let refused: Vec<&&Value> = messages
        .iter()
        .filter(|r| r["decision"] != "allow")
        .collect();
    assert!(
        refused.is_empty(),
        "the proxy did not simply allow every message of a clean modern session: {refused:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// rmcp client in Discover mode, direct vs through `wrap`
// ---------------------------------------------------------------------------------------------

/// An rmcp client that answers elicitation input requests (MRTR) with a fixed name.
#[derive(Clone, Default)]
struct ModernClient {
    elicitations: Arc<AtomicUsize>,
}

impl ClientHandler for ModernClient {
    fn get_info(&self) -> ClientConfig {
        InitializeRequestParams::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("modern-era-test", "1.0.0"),
        )
        .with_protocol_version(ProtocolVersion::V_2026_07_28)
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.elicitations.fetch_add(1, Ordering::SeqCst);
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({"name": "Ferris"})))
    }
}

/// What the client saw in one session, as JSON.
#[derive(Debug, PartialEq)]
struct Transcript {
    peer_info: Value,
    discover: Value,
    tools: Value,
    add: Value,
    echo: Value,
    greet: Value,
    elicitations: usize,
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("arguments must be an object, not {other}"),
    }
}

async fn modern_session(cmd: tokio::process::Command, stderr: File) -> Transcript {
    let handler = ModernClient::default();
    let elicitations = handler.elicitations.clone();
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(stderr)
        .spawn()
        .expect("spawn the server command");
    let client = handler
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover startup succeeds");
    let info = client.peer_info().expect("peer info after discover");
    assert_eq!(
        info.protocol_version,
        ProtocolVersion::V_2026_07_28,
        "the client did not settle on the modern protocol"
    );
    let discover = client
        .discover(Default::default())
        .await
        .expect("explicit server/discover");
    let tools = client.list_all_tools().await.expect("tools/list");
    let add = client
        .call_tool(CallToolRequestParams::new("add").with_arguments(args(json!({"a": 40, "b": 2}))))
        .await
        .expect("tools/call add");
    let echo = client
        .call_tool(
            CallToolRequestParams::new("echo")
                .with_arguments(args(json!({"text": "modern era ✓ \"quoted\""}))),
        )
        .await
        .expect("tools/call echo");
    let greet = client
        .call_tool(
            CallToolRequestParams::new("greet").with_arguments(args(json!({"greeting": "Hello"}))),
        )
        .await
        .expect("tools/call greet (MRTR: input_required, then complete)");
    client.cancel().await.expect("close the client");
    Transcript {
        peer_info: serde_json::to_value(&*info).expect("peer info JSON"),
        discover: serde_json::to_value(&discover).expect("discover JSON"),
        tools: serde_json::to_value(&tools).expect("tools JSON"),
        add: serde_json::to_value(&add).expect("add JSON"),
        echo: serde_json::to_value(&echo).expect("echo JSON"),
        greet: serde_json::to_value(&greet).expect("greet JSON"),
        elicitations: elicitations.load(Ordering::SeqCst),
    }
}

fn server_records(cmd: &mut tokio::process::Command, dir: &Path) {
    // Created here: the Landlock sandbox of `wrap` lets the server write existing files in an
    // ancestor of the state dir but not create new ones.
    for log in ["server_in.log", "server_out.log"] {
        std::fs::write(dir.join(log), b"").expect("server record file");
    }
    cmd.env("RMCP_RECORD_IN", dir.join("server_in.log"))
        .env("RMCP_RECORD_OUT", dir.join("server_out.log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_discover_client_through_wrap_equals_direct() {
    let server = rmcp_server_bin();

    let direct_dir = tempfile::tempdir().expect("tempdir");
    let mut direct = tokio::process::Command::new(&server);
    server_records(&mut direct, direct_dir.path());
    let stderr = File::create(direct_dir.path().join("stderr.log")).expect("stderr file");
    let direct_seen = tokio::time::timeout(SESSION_LIMIT, modern_session(direct, stderr))
        .await
        .expect("direct session finishes in time");

    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.jsonl");
    let mut proxied = tokio::process::Command::new(support::warden_bin());
    proxied
        .arg("wrap")
        .arg("--server")
        .arg("modern")
        .arg("--audit-file")
        .arg(&audit)
        .arg("--")
        .arg(&server)
        .env("MCP_WARDEN_STATE", dir.path().join("state"));
    server_records(&mut proxied, dir.path());
    let stderr_path = dir.path().join("stderr.log");
    let stderr = File::create(&stderr_path).expect("stderr file");
    let proxied_seen = tokio::time::timeout(SESSION_LIMIT, modern_session(proxied, stderr))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "session through wrap timed out; proxy stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            )
        });

    // The session itself worked and really was a modern one.
    assert_eq!(
        direct_seen.peer_info["protocolVersion"], MODERN,
        "direct: {direct_seen:#?}"
    );
    assert!(
        direct_seen.discover["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == MODERN)),
        "server/discover must list {MODERN}: {:#}",
        direct_seen.discover
    );
    let names: Vec<&str> = direct_seen
        .tools
        .as_array()
        .expect("tools array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["add", "echo", "greet", "summarize"], "tools/list");
    assert_eq!(direct_seen.add["content"][0]["text"], "42", "add");
    assert_eq!(
        direct_seen.echo["content"][0]["text"], "modern era ✓ \"quoted\"",
        "echo"
    );
    assert_eq!(
        direct_seen.greet["content"][0]["text"], "Hello, Ferris! (state greet-round-1:c3RhdGU=)",
        "greet completes after the elicitation round"
    );
    assert_eq!(
        direct_seen.elicitations, 1,
        "the MRTR tool asked for exactly one elicitation"
    );

    // Through the proxy the client sees exactly what it sees directly.
    assert_eq!(
        proxied_seen,
        direct_seen,
        "rmcp client through `wrap` differs from direct; proxy stderr:\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );

    // The upstream read and wrote the very same bytes in both runs (the rmcp client is
    // deterministic), so the proxy added, dropped and changed nothing on the wire.
    for log in ["server_in.log", "server_out.log"] {
        let direct_bytes = std::fs::read(direct_dir.path().join(log)).expect("direct record");
        let proxied_bytes = std::fs::read(dir.path().join(log)).expect("proxied record");
        assert!(
            !direct_bytes.is_empty(),
            "{log}: the server recorded nothing"
        );
        assert_eq!(
            String::from_utf8_lossy(&proxied_bytes),
            String::from_utf8_lossy(&direct_bytes),
            "{log}: upstream bytes through `wrap` differ from the direct run"
        );
    }
    let upstream_in = std::fs::read_to_string(dir.path().join("server_in.log")).expect("record");
    assert!(
        upstream_in.contains("\"server/discover\"") && !upstream_in.contains("\"initialize\""),
        "the wire was not modern (server/discover, no initialize): {upstream_in}"
    );
    assert!(
        upstream_in.contains("\"inputResponses\"") && upstream_in.contains("\"requestState\""),
        "the MRTR retry with inputResponses/requestState never reached the server: {upstream_in}"
    );
    let upstream_out = std::fs::read_to_string(dir.path().join("server_out.log")).expect("record");
    assert!(
        upstream_out.contains("\"resultType\":\"input_required\""),
        "the server never answered input_required: {upstream_out}"
    );

    assert_modern_audit(&read_audit(&audit), &["add", "echo", "greet"]);
}

// ---------------------------------------------------------------------------------------------
// Raw lines through `wrap`
// ---------------------------------------------------------------------------------------------

/// One `mcp-warden wrap --server modern` process driven with raw lines.
struct RawWrap {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Vec<u8>>,
    dir: tempfile::TempDir,
}

impl RawWrap {
    fn start(server: &Path, env: &[(&str, PathBuf)]) -> RawWrap {
        RawWrap::start_with(server, env, None)
    }

    /// As `start`, with a `proxy.toml` of this text.
    fn start_with(server: &Path, env: &[(&str, PathBuf)], config: Option<&str>) -> RawWrap {
        let dir = tempfile::tempdir().expect("tempdir");
        // Created here: `dir` is an ancestor of the state dir, where the Landlock sandbox lets
        // the server write existing files but not create new ones.
        for log in ["server_in.log", "server_out.log"] {
            std::fs::write(dir.path().join(log), b"").expect("server record file");
        }
        let mut cmd = Command::new(support::warden_bin());
        cmd.arg("wrap").arg("--server").arg("modern");
        if let Some(text) = config {
            // In a folder of its own: the sandbox hides the proxy's config from the server,
            // which writes its records next to it.
            let cfg = dir.path().join("cfg");
            std::fs::create_dir_all(&cfg).expect("config dir");
            let p = cfg.join("proxy.toml");
            std::fs::write(&p, text).expect("write config");
            cmd.arg("--config").arg(p);
        }
        cmd.arg("--audit-file")
            .arg(dir.path().join("audit.jsonl"))
            .arg("--")
            .arg(server)
            .env("MCP_WARDEN_STATE", dir.path().join("state"))
            .env("RMCP_RECORD_IN", dir.path().join("server_in.log"))
            .env("RMCP_RECORD_OUT", dir.path().join("server_out.log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(dir.path().join("stderr.log")).expect("stderr file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
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
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        RawWrap {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Write one line (a `\n` is appended) and return the next line the client receives,
    /// newline included.
    fn exchange(&mut self, line: &str) -> Vec<u8> {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to the proxy");
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                panic!(
                    "no answer within 10 s to {line}\nproxy stderr:\n{}",
                    self.stderr()
                )
            })
    }

    /// Close stdin and wait (bounded) for the proxy to exit.
    fn finish(&mut self) {
        self.stdin.take();
        for _ in 0..100 {
            if self.child.try_wait().expect("try_wait").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the proxy did not exit within 5 s of stdin closing; stderr:\n{}",
            self.stderr()
        );
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap_or_default()
    }
}

impl Drop for RawWrap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(line: &[u8]) -> Value {
    serde_json::from_slice(line).unwrap_or_else(|e| {
        panic!(
            "client got non-JSON {:?}: {e}",
            String::from_utf8_lossy(line)
        )
    })
}

/// Request `_meta` a 2026-07-28 client sends with every request (written the way a hand-rolled
/// client might: its own key order, a `\u` escape, and a vendor key with a 20-digit integer).
const META: &str = r#""_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}},"roots":{}},"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"version":"1.0.0","name":"raw \u00e9 client"},"example.test/trace":12345678901234567890}"#;

#[test]
fn mrtr_raw_lines_through_wrap_are_byte_identical() {
    let mut w = RawWrap::start(&rmcp_server_bin(), &[]);
    let lines = [
        format!(r#"{{"jsonrpc":"2.0","id":"d-1","method":"server/discover","params":{{{META}}}}}"#),
        // A client lists tools before calling them (the proxy pins them on first sight).
        format!(r#"{{"jsonrpc":"2.0","id":"l-1","method":"tools/list","params":{{{META}}}}}"#),
        format!(
            r#"{{"params":{{{META},"arguments":{{"greeting":"Gr\u00fc\u00df dich"}},"name":"greet"}},"method":"tools/call","id":7,"jsonrpc":"2.0"}}"#
        ),
        format!(
            r#"{{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{{"name":"greet","arguments":{{"greeting":"Gr\u00fc\u00df dich"}},"inputResponses":{{"name":{{"content":{{"name":"Ferris \ud83e\udd80"}},"action":"accept","_meta":{{"example.test/n":1.0e2}}}}}},"requestState":"greet-round-1:c3RhdGU=",{META}}}}}"#
        ),
    ];
    let mut got = Vec::new();
    for line in &lines {
        got.push(w.exchange(line));
    }

    let discover = parse(&got[0]);
    assert_eq!(discover["id"], "d-1", "discover answer: {discover}");
    assert_eq!(
        discover["result"]["resultType"], "complete",
        "a modern result carries resultType: {discover}"
    );
    assert!(
        discover["result"]["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == MODERN)),
        "server/discover must list {MODERN}: {discover}"
    );

    let list = parse(&got[1]);
    assert_eq!(list["id"], "l-1", "tools/list answer: {list}");
    assert!(
        list["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "greet")),
        "tools/list must offer greet: {list}"
    );

    let first = parse(&got[2]);
    assert_eq!(first["id"], 7, "first greet answer: {first}");
    assert_eq!(
        first["result"]["resultType"], "input_required",
        "the first round must ask for input: {first}"
    );
    assert_eq!(
        first["result"]["requestState"], "greet-round-1:c3RhdGU=",
        "{first}"
    );
    assert_eq!(
        first["result"]["inputRequests"]["name"]["method"], "elicitation/create",
        "{first}"
    );

    let done = parse(&got[3]);
    assert_eq!(done["id"], 8, "retry answer: {done}");
    assert_eq!(
        done["result"]["resultType"], "complete",
        "the retry with inputResponses must complete: {done}"
    );
    assert_eq!(
        done["result"]["content"][0]["text"],
        "Grüß dich, Ferris 🦀! (state greet-round-1:c3RhdGU=)",
        "the server must have read the inputResponses and requestState: {done}"
    );

    w.finish();
    let sent: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(
        String::from_utf8_lossy(&w.file("server_in.log")),
        sent,
        "client→server: the upstream did not receive the client's bytes verbatim"
    );
    let received: Vec<u8> = got.concat();
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&w.file("server_out.log")),
        "server→client: the client did not receive the upstream's bytes verbatim"
    );
    assert_modern_audit(&read_audit(&w.dir.path().join("audit.jsonl")), &["greet"]);
}

#[test]
fn scripted_input_required_with_odd_bytes_is_forwarded_verbatim() {
    // Odd but valid: key order, `\u` escapes (incl. a surrogate pair), a 20-digit integer, `1.0e2`,
    // unknown fields, a requestState with quotes, slashes and whitespace.
    let input_required = r#"{"id":{{id}},"jsonrpc":"2.0","result":{"requestState":"opaque+/=.state \"q\"\t","x-vendor":{"n":12345678901234567890,"f":1.0e2},"inputRequests":{"who":{"params":{"requestedSchema":{"type":"object","properties":{"name":{"type":"string"}}},"mode":"form","message":"Qui \u00eates-vous ? \ud83d\ude00"},"method":"elicitation/create"},"where":{"method":"roots/list"}},"resultType":"input_required"}}"#;
    let mut w = support::Wrapped::start(support::Options {
        script: Some(json!({ "book": [input_required] })),
        ..Default::default()
    });
    // List first, as a client does: the proxy refuses calls of tools it never saw listed.
    let list =
        format!(r#"{{"jsonrpc":"2.0","id":"l-1","method":"tools/list","params":{{{META}}}}}"#);
    w.send_raw(format!("{list}\n").as_bytes());
    let listed = w.recv();
    assert!(
        listed["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "book")),
        "tools/list through the proxy must offer the scripted tool: {listed}"
    );
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{{"name":"book","arguments":{{"room":"r\u00e9union"}},{META}}}}}"#
    );
    w.send_raw(format!("{call}\n").as_bytes());
    let got = w
        .recv_raw(Duration::from_secs(10))
        .expect("an answer to the first tools/call within 10 s");
    assert_eq!(
        String::from_utf8_lossy(&got),
        input_required.replace("{{id}}", "\"c-1\""),
        "server→client: the input_required result was not forwarded verbatim"
    );

    let retry = format!(
        r#"{{"jsonrpc":"2.0","id":"c-2","method":"tools/call","params":{{"requestState":"opaque+/=.state \"q\"\t","inputResponses":{{"where":{{"roots":[{{"uri":"file:///work","name":"w"}}]}},"who":{{"action":"accept","content":{{"name":"Ferris \u00e9"}},"x":12345678901234567890}}}},"name":"book","arguments":{{"room":"r\u00e9union"}},{META}}}}}"#
    );
    w.send_raw(format!("{retry}\n").as_bytes());
    let again = w
        .recv_raw(Duration::from_secs(10))
        .expect("an answer to the retry within 10 s");
    // The scripted upstream answers every call of `book` the same way; what matters here is that
    // the retry and its answer crossed the proxy untouched.
    assert_eq!(
        String::from_utf8_lossy(&again),
        input_required.replace("{{id}}", "\"c-2\""),
        "server→client: the answer to the retry was not forwarded verbatim"
    );
    let upstream: Vec<String> = w
        .upstream()
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    assert_eq!(
        upstream,
        [list, call, retry],
        "client→server: the upstream did not receive the calls (and the inputResponses retry) verbatim"
    );
    let audit = w.audit();
    let messages: Vec<&Value> = audit
        .iter()
        .filter(|r| r["direction"] == "client_to_server" || r["direction"] == "server_to_client")
        .collect();
    assert!(
        messages.iter().any(|r| r["era"] == "modern"),
        "requests with 2026-07-28 _meta were not audited as modern: {messages:#?}"
    );
    assert!(
        messages.iter().all(|r| r["decision"] == "allow"),
        "the proxy did not simply allow the MRTR exchange: {messages:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Approval in the modern era: `input_required` with the proxy's own authenticated state
// ---------------------------------------------------------------------------------------------

/// A config whose policy asks for approval of `echo` (low risk: the trust gate stays out of
/// the way) and may remember it; the policy dir is made under `dir`.
fn approval_config(dir: &Path, timeout_secs: u64) -> String {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).expect("policy dir");
    std::fs::write(
        policies.join("modern.toml"),
        "[server]\nmatch = [\"modern\"]\n\n[[tool]]\nname = \"echo\"\nrisk = \"low\"\naction = \"approve\"\nremember = \"session\"\n\n[[tool]]\nname = \"greet\"\nrisk = \"low\"\naction = \"approve\"\n",
    )
    .expect("policy");
    format!(
        "[policy]\ndir = {:?}\napproval_timeout_secs = {timeout_secs}\nrisk_thresholds = {{ low = 0.0, medium = 0.0, high = 0.0 }}\n",
        policies.to_string_lossy()
    )
}

fn echo_call(id: &str, text: &str, extra: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":"{id}","method":"tools/call","params":{{{META},"name":"echo","arguments":{{"text":"{text}"}}{extra}}}}}"#
    )
}

fn retry_fields(state: &str, answer: &Value) -> String {
    format!(
        r#","inputResponses":{{"mcp-warden/approval":{answer}}},"requestState":{}"#,
        Value::from(state)
    )
}

impl RawWrap {
    fn modern_start(&mut self) {
        self.exchange(&format!(
            r#"{{"jsonrpc":"2.0","id":"d-1","method":"server/discover","params":{{{META}}}}}"#
        ));
        self.exchange(&format!(
            r#"{{"jsonrpc":"2.0","id":"l-1","method":"tools/list","params":{{{META}}}}}"#
        ));
    }

    /// Ask for `echo(text)`: the proxy's `input_required`; returns its `requestState`.
    fn ask_state(&mut self, id: &str, text: &str) -> String {
        let r = parse(&self.exchange(&echo_call(id, text, "")));
        assert_eq!(r["result"]["resultType"], "input_required", "{r}");
        let req = &r["result"]["inputRequests"]["mcp-warden/approval"];
        assert_eq!(req["method"], "elicitation/create", "{r}");
        assert_eq!(
            req["params"]["requestedSchema"]["properties"]["approve"]["type"], "boolean",
            "{r}"
        );
        assert!(
            req["params"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(text),
            "the human sees the arguments: {r}"
        );
        r["result"]["requestState"]
            .as_str()
            .expect("a requestState")
            .to_owned()
    }

    fn server_calls(&self) -> Vec<Value> {
        self.file("server_in.log")
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
            .filter(|m| m["method"] == "tools/call")
            .collect()
    }
}

fn assert_refused(r: &Value, why: &str) {
    assert_eq!(r["error"]["code"], -32014, "{r}");
    let reason = r["error"]["data"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(why), "reason {reason:?} should say {why:?}");
}

/// Issue 11 (modern era): a call that needs approval is answered `input_required` with the
/// proxy's elicitation and an HMAC'd `requestState`; the accepted retry reaches the server as
/// the original call (no proxy fields); a replayed, tampered, re-targeted or declined retry is
/// -32014 and reaches nothing.
#[test]
fn modern_approval_round_is_authenticated_and_invisible_to_the_server() {
    let cfg_dir = tempfile::tempdir().expect("tempdir");
    let config = approval_config(cfg_dir.path(), 30);
    let mut w = RawWrap::start_with(&rmcp_server_bin(), &[], Some(&config));
    w.modern_start();
    let accept = json!({"action": "accept", "content": {"approve": true}});

    let state = w.ask_state("a-1", "approve me");
    assert!(
        w.server_calls().is_empty(),
        "nothing reached the server before the answer"
    );
    let r = parse(&w.exchange(&echo_call(
        "a-2",
        "approve me",
        &retry_fields(&state, &accept),
    )));
    assert!(
        r["result"]["content"].is_array(),
        "approved call answered by the server: {r}"
    );
    let calls = w.server_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let seen = serde_json::to_string(&calls[0]).expect("json");
    assert!(
        !seen.contains("requestState") && !seen.contains("mcp-warden/approval"),
        "the server saw the proxy's round: {seen}"
    );
    assert_eq!(calls[0]["params"]["arguments"]["text"], "approve me");

    // The same state again: each approval runs one call.
    let r = parse(&w.exchange(&echo_call(
        "a-3",
        "approve me",
        &retry_fields(&state, &accept),
    )));
    assert_refused(&r, "already used");

    // Minted for one argument, presented for another.
    let state = w.ask_state("b-1", "harmless");
    let r = parse(&w.exchange(&echo_call(
        "b-2",
        "rm -rf /",
        &retry_fields(&state, &accept),
    )));
    assert_refused(&r, "does not match this call");

    // Tampered: the expiry pushed out.
    let state = w.ask_state("c-1", "tamper");
    let mut parts: Vec<String> = state.split('.').map(str::to_owned).collect();
    parts[1] = (parts[1].parse::<u64>().expect("expiry") + 3600).to_string();
    let forged = parts.join(".");
    let r = parse(&w.exchange(&echo_call("c-2", "tamper", &retry_fields(&forged, &accept))));
    assert_refused(&r, "does not match this call");

    // The human said no.
    let state = w.ask_state("d-1", "decline me");
    let declined = json!({"action": "decline"});
    let r = parse(&w.exchange(&echo_call(
        "d-2",
        "decline me",
        &retry_fields(&state, &declined),
    )));
    assert_refused(&r, "declined");

    assert_eq!(w.server_calls().len(), 1, "only the approved call ran");

    // "Remember for this session" (the rule says `remember = "session"`): later calls of echo
    // with the same argument names run without a question.
    let state = w.ask_state("f-1", "remember me");
    let remember = json!({"action": "accept", "content": {"approve": true, "remember": true}});
    let r = parse(&w.exchange(&echo_call(
        "f-2",
        "remember me",
        &retry_fields(&state, &remember),
    )));
    assert!(r["result"]["content"].is_array(), "{r}");
    let r = parse(&w.exchange(&echo_call("f-3", "no question now", "")));
    assert!(r["result"]["content"].is_array(), "remembered: {r}");
    assert_eq!(w.server_calls().len(), 3);

    w.finish();
    let audit = read_audit(&w.dir.path().join("audit.jsonl"));
    let events: Vec<&str> = audit.iter().filter_map(|r| r["event"].as_str()).collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "approval.input_required")
            .count(),
        5,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "approval.remembered")
            .count(),
        1
    );
    assert_eq!(
        events.iter().filter(|e| **e == "approval.granted").count(),
        2
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "approval.state_refused")
            .count(),
        3
    );
}

/// Issue 11 (modern era): a state past `approval_timeout_secs` is refused even when the
/// human approved.
#[test]
fn an_expired_modern_approval_state_is_refused() {
    let cfg_dir = tempfile::tempdir().expect("tempdir");
    let config = approval_config(cfg_dir.path(), 1);
    let mut w = RawWrap::start_with(&rmcp_server_bin(), &[], Some(&config));
    w.modern_start();
    let state = w.ask_state("e-1", "too late");
    // Expiry has one-second resolution: past it for certain after two seconds.
    std::thread::sleep(Duration::from_millis(2100));
    let accept = json!({"action": "accept", "content": {"approve": true}});
    let r = parse(&w.exchange(&echo_call(
        "e-2",
        "too late",
        &retry_fields(&state, &accept),
    )));
    assert_refused(&r, "expired");
    assert!(w.server_calls().is_empty());
}

/// An rmcp 3.11 client in Discover mode that approves the proxy's question (and answers the
/// server's own `greet` elicitation with a name).
#[derive(Clone, Default)]
struct ApprovingClient {
    asked: Arc<AtomicUsize>,
}

impl ClientHandler for ApprovingClient {
    fn get_info(&self) -> ClientConfig {
        ModernClient::default().get_info()
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let text = serde_json::to_string(&request).unwrap_or_default();
        if text.contains("mcp-warden") {
            self.asked.fetch_add(1, Ordering::SeqCst);
            return Ok(
                ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": true}))
            );
        }
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({"name": "Ferris"})))
    }
}

/// Issue 11 proof: the real rmcp client handles the proxy's `input_required` round by itself
/// (its elicitation handler approves) and gets the server's real answer through `wrap`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_approves_through_input_required() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Config and policy apart from the server's records (the sandbox hides them).
    let cfg_dir = tempfile::tempdir().expect("tempdir");
    let config = cfg_dir.path().join("proxy.toml");
    std::fs::write(&config, approval_config(cfg_dir.path(), 30)).expect("config");
    let mut cmd = tokio::process::Command::new(support::warden_bin());
    cmd.arg("wrap")
        .arg("--server")
        .arg("modern")
        .arg("--config")
        .arg(&config)
        .arg("--audit-file")
        .arg(dir.path().join("audit.jsonl"))
        .arg("--")
        .arg(rmcp_server_bin())
        .env("MCP_WARDEN_STATE", dir.path().join("state"));
    server_records(&mut cmd, dir.path());
    let stderr_path = dir.path().join("stderr.log");
    let handler = ApprovingClient::default();
    let asked = handler.asked.clone();
    let session = async {
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(File::create(&stderr_path).expect("stderr"))
            .spawn()
            .expect("spawn wrap");
        let client = handler
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("discover through wrap");
        client.list_all_tools().await.expect("tools/list");
        let echo = client
            .call_tool(
                CallToolRequestParams::new("echo")
                    .with_arguments(args(json!({"text": "approved ✓"}))),
            )
            .await
            .expect("tools/call echo after approval");
        // A tool with its own MRTR round after the proxy's: approved once, then the server's
        // elicitation, then its result.
        let greet = client
            .call_tool(
                CallToolRequestParams::new("greet")
                    .with_arguments(args(json!({"greeting": "Hello"}))),
            )
            .await
            .expect("tools/call greet after approval");
        client.cancel().await.expect("close");
        (echo, greet)
    };
    let echo = tokio::time::timeout(SESSION_LIMIT, session)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "timed out; proxy stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            )
        });
    let (echo, greet) = echo;
    let echo = serde_json::to_value(&echo).expect("json");
    assert!(
        echo.to_string().contains("approved ✓"),
        "the server's answer after approval: {echo}"
    );
    let greet = serde_json::to_value(&greet).expect("json");
    assert!(
        greet.to_string().contains("Ferris"),
        "the server's own round continued the approved call: {greet}"
    );
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "the human was asked once per call"
    );
    // The proxy flushes its audit as it exits, which may be just after the client closed.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !read_audit(&dir.path().join("audit.jsonl"))
        .iter()
        .any(|r| r["event"] == "approval.granted")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "approval.granted never audited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
