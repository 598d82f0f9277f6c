//! Model routing (SPEC §11, issue 12): a server's `sampling/createMessage` answered by a
//! co-located OpenAI-compatible backend through the real binary.
//!
//! - A REAL backend: llama.cpp's server (`xllamacpp`) with SmolLM2-135M-Instruct, one thread,
//!   behind `wrap` in front of server-everything: its `trigger-sampling-request` tool gets text
//!   the model generated, the client (which never declared sampling) sees no sampling request,
//!   and the audit record carries the usage.
//! - A scripted backend (`tests/inference/scripted_backend.py`) for what llama.cpp cannot
//!   produce: tool calls, vLLM `stop_reason`, errors, garbage, slowness, a 404 model; the echo
//!   server's script hook plays the sampling server.
//!
//! Needs `scripts/setup-peers.sh` (peers, xllamacpp, the model).

mod support;

use support::serve::ServeProc;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::raw_http::dechunk;

use serde_json::{json, Value};
use support::{start_upstream, Options, Wrapped};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let p = repo().join(".venv-peers/bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/setup-peers.sh",
        p.display()
    );
    p
}

/// A backend process, killed when the test ends.
struct Backend {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    record: PathBuf,
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Backend {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The chat requests the scripted backend received.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("recorded request is JSON"))
            .collect()
    }
}

fn wait_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// HTTP status of `GET path` (plain TCP: no client dependency).
fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(status, _)| status)
}

/// `GET path` on a fresh connection: status and body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

fn scripted_backend() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let port_file = dir.path().join("port");
    let record = dir.path().join("requests.jsonl");
    let child = Command::new(python())
        .arg(repo().join("tests/inference/scripted_backend.py"))
        .arg(&port_file)
        .arg(&record)
        .stdin(Stdio::null())
        .spawn()
        .expect("start scripted backend");
    let port = wait_until(
        "the scripted backend's port",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&port_file)
                .ok()?
                .trim()
                .parse()
                .ok()
        },
    );
    Backend {
        child,
        port,
        _dir: dir,
        record,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn llama_backend() -> Backend {
    let model = repo().join(".venv-peers/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        model.exists(),
        "{} missing: run scripts/setup-peers.sh",
        model.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let child = Command::new(python())
        .arg(repo().join("tests/inference/llama_backend.py"))
        .arg(&model)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start llama.cpp backend");
    let record = dir.path().join("none");
    let b = Backend {
        child,
        port,
        _dir: dir,
        record,
    };
    wait_until("llama.cpp /health", Duration::from_secs(60), || {
        (http_status(port, "/health") == Some(200)).then_some(())
    });
    b
}

fn config(backend: &str, server: &str, route: &str, extra: &str) -> String {
    format!(
        "[inference]\nbackend = \"{backend}\"\n{extra}\n[[servers]]\nname = \"{server}\"\ncommand = [\"x\"]\nsampling = \"{route}\"\n"
    )
}

/// The echo server as a sampling server: tool `sample` sends `request` (id "s1") to the
/// client side and answers the call at once.
fn sampling_server(config: String, requests: &[(&str, Value)]) -> Wrapped {
    let mut script = serde_json::Map::new();
    for (tool, params) in requests {
        let req = json!({"jsonrpc": "2.0", "id": format!("s-{tool}"), "method": "sampling/createMessage", "params": params});
        script.insert(
            (*tool).to_owned(),
            json!([req.to_string(), r#"{"jsonrpc":"2.0","id":{{id}},"result":{"content":[{"type":"text","text":"asked"}]}}"#]),
        );
    }
    let mut w = start_upstream(
        Options {
            script: Some(Value::Object(script)),
            config: Some(config),
            ..Options::default()
        },
        "sampler",
        &[support::echo_server_bin().into_os_string()],
    );
    w.initialize();
    w.send(&json!({"jsonrpc": "2.0", "id": "l", "method": "tools/list"}));
    let _ = w.recv();
    w
}

/// What the server got back for its sampling request `s-TOOL` (from the echo server's record).
fn server_got(w: &Wrapped, tool: &str, limit: Duration) -> Value {
    let want = format!("s-{tool}");
    wait_until("the answer to the server's sampling request", limit, || {
        w.upstream().into_iter().find_map(|l| {
            let v: Value = serde_json::from_slice(&l).ok()?;
            (v["id"] == want.as_str() && v.get("method").is_none()).then_some(v)
        })
    })
}

fn call(w: &mut Wrapped, tool: &str) {
    w.send(&json!({"jsonrpc": "2.0", "id": format!("c-{tool}"), "method": "tools/call", "params": {"name": tool, "arguments": {}}}));
    let answer = w.recv();
    assert_eq!(answer["id"], format!("c-{tool}"), "{answer}");
}

fn record_of<'a>(audit: &'a [Value], id: &str) -> &'a Value {
    audit
        .iter()
        .find(|r| r["method"] == "sampling/createMessage" && r["id"] == id)
        .unwrap_or_else(|| panic!("no audit record for {id}: {audit:#?}"))
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": {"type": "text", "text": text}}])
}

/// The answer to request `id`; every line before it must not be a sampling request.
fn recv_id(w: &Wrapped, id: u64) -> Value {
    loop {
        let line = w
            .recv_raw(Duration::from_secs(120))
            .unwrap_or_else(|| panic!("an answer to request {id} within 120 s"));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_ne!(
            v["method"], "sampling/createMessage",
            "the client must not see sampling"
        );
        if v["id"] == id {
            return v;
        }
    }
}

#[test]
fn real_llama_cpp_answers_server_everything_sampling_through_wrap() {
    let backend = llama_backend();
    let everything = everything_js();
    let mut w = start_upstream(
        Options {
            config: Some(config(&backend.url(), "everything", "backend", "")),
            ..Options::default()
        },
        "everything",
        &["node".into(), everything.into_os_string(), "stdio".into()],
    );
    // A client that cannot sample: the proxy declares sampling for it. (server-everything
    // announces list changes after the handshake, so answers are awaited by id.)
    w.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
    let _ = recv_id(&w, 1);
    w.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    w.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let listing = recv_id(&w, 2);
    let names: Vec<&str> = listing["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"trigger-sampling-request"),
        "the server must see a sampling-capable client: {names:?}"
    );
    w.send(
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "trigger-sampling-request",
        "arguments": {"prompt": "Say hello in one short sentence.", "maxTokens": 24}}}),
    );
    let answer = recv_id(&w, 3);
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(text.starts_with("LLM sampling result"), "{text}");
    let json_part = &text[text.find('{').expect("result JSON")..];
    let result: Value = serde_json::from_str(json_part).expect("sampling result JSON");
    assert_eq!(result["model"], "smollm2-135m-instruct", "{result}");
    assert_eq!(result["role"], "assistant");
    let generated = result["content"]["text"].as_str().unwrap_or("");
    assert!(
        generated.chars().filter(|c| c.is_alphabetic()).count() >= 3,
        "the model generated text: {result}"
    );
    assert!(
        ["endTurn", "maxTokens"].contains(&result["stopReason"].as_str().unwrap_or("")),
        "{result}"
    );
    w.finish();
    let audit = w.audit();
    let rec = audit
        .iter()
        .find(|r| r["event"] == "inference.completed")
        .unwrap_or_else(|| panic!("no inference record: {audit:#?}"));
    let usage = &rec["detail"]["inference"];
    assert_eq!(usage["model"], "smollm2-135m-instruct", "{rec}");
    assert!(usage["prompt_tokens"].as_u64().unwrap_or(0) > 0, "{rec}");
    assert!(
        usage["completion_tokens"].as_u64().unwrap_or(0) > 0,
        "{rec}"
    );
    assert!(usage["latency_ms"].as_f64().unwrap_or(0.0) > 0.0, "{rec}");
    assert_eq!(rec["method"], "sampling/createMessage");
    assert!(audit
        .iter()
        .any(|r| r["event"] == "inference.sampling_declared"));
    eprintln!(
        "llama.cpp through wrap: {} prompt + {} completion tokens in {:.0} ms: {generated:?}",
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["latency_ms"].as_f64().unwrap_or(0.0)
    );
}

#[test]
fn scripted_backend_maps_requests_tools_stop_reasons_and_redacts() {
    let backend = scripted_backend();
    let cfg = config(&backend.url(), "sampler", "backend", "max_tokens_cap = 64");
    let mut w = sampling_server(
        cfg,
        &[
            (
                "plain",
                json!({"messages": user("hello"), "systemPrompt": "Be brief.", "maxTokens": 5000,
                   "temperature": 0.2, "includeContext": "allServers",
                   "modelPreferences": {"hints": [{"name": "claude-3-sonnet"}, {"name": "qwen"}]}}),
            ),
            (
                "tools",
                json!({"messages": user("TOOLS please"), "maxTokens": 50, "toolChoice": {"mode": "auto"},
                   "tools": [{"name": "get_weather", "description": "Weather", "inputSchema": {"type": "object"}}]}),
            ),
            (
                "stopseq",
                json!({"messages": user("STOPSEQ"), "maxTokens": 50, "stopSequences": ["END"]}),
            ),
            (
                "secret",
                json!({"messages": user("SECRET"), "maxTokens": 50}),
            ),
        ],
    );
    for tool in ["plain", "tools", "stopseq", "secret"] {
        call(&mut w, tool);
    }
    let plain = server_got(&w, "plain", Duration::from_secs(20));
    assert_eq!(
        plain["result"],
        json!({"role": "assistant", "content": {"type": "text", "text": "scripted answer"},
               "model": "Qwen/Qwen2.5-0.5B-Instruct", "stopReason": "endTurn"}),
        "{plain}"
    );
    let tools = server_got(&w, "tools", Duration::from_secs(20));
    assert_eq!(tools["result"]["stopReason"], "toolUse", "{tools}");
    assert_eq!(
        tools["result"]["content"],
        json!([{"type": "tool_use", "id": "call_7", "name": "get_weather", "input": {"city": "Paris"}}])
    );
    let stop = server_got(&w, "stopseq", Duration::from_secs(20));
    assert_eq!(stop["result"]["stopReason"], "stopSequence", "{stop}");
    let secret = server_got(&w, "secret", Duration::from_secs(20));
    let text = secret["result"]["content"]["text"].as_str().unwrap();
    assert!(
        !text.contains("AKIAIOSFODNN7EXAMPLE") && text.contains("[REDACTED"),
        "{secret}"
    );
    // What the backend was asked.
    let asked = backend.requests();
    let first = asked
        .iter()
        .find(|r| r["messages"][1]["content"] == "hello")
        .unwrap();
    assert_eq!(first["model"], "Qwen/Qwen2.5-0.5B-Instruct");
    assert_eq!(first["max_tokens"], 64, "capped by max_tokens_cap");
    assert_eq!(first["temperature"], 0.2);
    assert_eq!(
        first["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    let with_tools = asked
        .iter()
        .find(|r| r["messages"][0]["content"] == "TOOLS please")
        .unwrap();
    assert_eq!(with_tools["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(with_tools["tool_choice"], "auto");
    let with_stop = asked
        .iter()
        .find(|r| r["messages"][0]["content"] == "STOPSEQ")
        .unwrap();
    assert_eq!(with_stop["stop"], json!(["END"]));
    // No sampling request reached the client.
    while let Some(line) = w.recv_raw(Duration::from_millis(200)) {
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_ne!(v["method"], "sampling/createMessage", "{v}");
    }
    w.finish();
    let audit = w.audit();
    let rec = record_of(&audit, "s-plain");
    assert_eq!(rec["event"], "inference.completed", "{rec}");
    assert_eq!(rec["detail"]["inference"]["prompt_tokens"], 11);
    assert_eq!(rec["detail"]["inference"]["completion_tokens"], 3);
    let reason = rec["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("capped") && reason.contains("includeContext"),
        "{rec}"
    );
    let rec = record_of(&audit, "s-secret");
    assert_eq!(rec["decision"], "redact", "{rec}");
}

#[test]
fn backend_failures_answer_the_server_with_an_error_never_the_client() {
    let backend = scripted_backend();
    let cfg = config(&backend.url(), "sampler", "backend", "timeout_secs = 2");
    let mut w = sampling_server(
        cfg,
        &[
            (
                "garbage",
                json!({"messages": user("GARBAGE"), "maxTokens": 5}),
            ),
            ("error", json!({"messages": user("ERROR"), "maxTokens": 5})),
            ("slow", json!({"messages": user("SLOW"), "maxTokens": 5})),
            ("malformed", json!({"messages": user("no maxTokens")})),
            (
                "gone",
                json!({"messages": user("MODEL404"), "maxTokens": 5}),
            ),
        ],
    );
    for tool in ["garbage", "error", "slow", "malformed", "gone"] {
        call(&mut w, tool);
    }
    let started = Instant::now();
    for (tool, code, words) in [
        ("garbage", -32603, "not JSON"),
        ("error", -32603, "HTTP 500"),
        ("slow", -32603, "within 2 s"),
        ("malformed", -32602, "maxTokens"),
        ("gone", -32603, "HTTP 404"),
    ] {
        let got = server_got(&w, tool, Duration::from_secs(15));
        assert_eq!(got["error"]["code"], code, "{tool}: {got}");
        let reason = got["error"]["data"]["reason"].as_str().unwrap_or("");
        assert!(reason.contains(words), "{tool}: {got}");
        assert!(got["error"]["data"]["audit_id"].as_str().is_some());
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the slow backend is cut off by timeout_secs"
    );
    // A backend that is down.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut w2 = sampling_server(
        config(&dead, "sampler", "backend", ""),
        &[("down", json!({"messages": user("hi"), "maxTokens": 5}))],
    );
    call(&mut w2, "down");
    let got = server_got(&w2, "down", Duration::from_secs(15));
    assert_eq!(got["error"]["code"], -32603, "{got}");
    assert!(got["error"]["data"]["reason"]
        .as_str()
        .unwrap()
        .contains("cannot connect"));
    for w in [&mut w, &mut w2] {
        while let Some(line) = w.recv_raw(Duration::from_millis(200)) {
            let v: Value = serde_json::from_slice(&line).unwrap();
            assert_ne!(v["method"], "sampling/createMessage", "{v}");
        }
        w.finish();
    }
    let audit = w.audit();
    assert_eq!(record_of(&audit, "s-slow")["event"], "inference.timeout");
    assert_eq!(record_of(&audit, "s-garbage")["decision"], "error");
}

#[test]
fn deny_and_client_routes() {
    let params = json!({"messages": user("hi"), "maxTokens": 5});
    // deny: an error to the server, with its one record.
    let mut w = sampling_server(
        "[[servers]]\nname = \"sampler\"\ncommand = [\"x\"]\nsampling = \"deny\"\n".into(),
        &[("s", params.clone())],
    );
    call(&mut w, "s");
    let got = server_got(&w, "s", Duration::from_secs(10));
    assert_eq!(got["error"]["code"], -32013, "{got}");
    assert_eq!(got["error"]["data"]["rule"], "sampling.route");
    w.finish();
    assert_eq!(record_of(&w.audit(), "s-s")["event"], "sampling.denied");
    // client (the default): forwarded to a client that declared sampling.
    let mut w = start_upstream(
        Options {
            script: Some(
                json!({"s": [json!({"jsonrpc": "2.0", "id": "s-s", "method": "sampling/createMessage", "params": params}).to_string()]}),
            ),
            ..Options::default()
        },
        "sampler",
        &[support::echo_server_bin().into_os_string()],
    );
    w.initialize_with(json!({"sampling": {}}));
    // The initialize the server saw is the client's own.
    let init: Value = serde_json::from_slice(&w.upstream()[0]).unwrap();
    assert_eq!(init["params"]["capabilities"], json!({"sampling": {}}));
    w.send(&json!({"jsonrpc": "2.0", "id": "l", "method": "tools/list"}));
    let _ = w.recv();
    w.send(&json!({"jsonrpc": "2.0", "id": "c", "method": "tools/call", "params": {"name": "s", "arguments": {}}}));
    let v = w.recv();
    assert_eq!(v["method"], "sampling/createMessage", "{v}");
    w.finish();
}

#[test]
fn the_initialize_rewrite_declares_sampling_with_tools() {
    let backend = scripted_backend();
    let w = sampling_server(
        config(&backend.url(), "sampler", "backend", ""),
        &[("x", json!({"messages": user("hi"), "maxTokens": 5}))],
    );
    let init: Value = serde_json::from_slice(&w.upstream()[0]).unwrap();
    assert_eq!(
        init["params"]["capabilities"]["sampling"],
        json!({"tools": {}}),
        "{init}"
    );
    drop(w);
}

// ------------------------------------------------------------------ serve

/// A running `mcp-warden serve` (stopped with SIGTERM on drop), its policy as configured.
struct Serve {
    _proc: ServeProc,
    addr: String,
    admin: Option<u16>,
    dir: tempfile::TempDir,
}

impl Serve {
    fn start(config: &str) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("proxy.toml");
        std::fs::write(&cfg, config).expect("config");
        let proc = ServeProc::start_as_configured(
            &cfg,
            &dir.path().join("state"),
            Some(&dir.path().join("audit.jsonl")),
            &[],
        );
        Serve {
            addr: proc.addr.to_string(),
            admin: proc.admin.map(|a| a.port()),
            _proc: proc,
            dir,
        }
    }

    /// POST one JSON-RPC message; the messages of the answer (JSON or SSE), and its headers.
    fn post(&self, path: &str, session: Option<&str>, body: &Value) -> (Vec<Value>, String) {
        let session = session.map(|sid| format!("Mcp-Session-Id: {sid}\r\n"));
        self.post_with(
            path,
            "MCP-Protocol-Version: 2025-11-25\r\n",
            session.as_deref().unwrap_or(""),
            body,
        )
    }

    /// A modern (2026-07-28) call: its routing headers mirror the body.
    fn post_modern(&self, path: &str, method: &str, name: &str, body: &Value) -> Vec<Value> {
        let headers = format!(
            "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\nMcp-Name: {name}\r\n"
        );
        self.post_with(path, &headers, "", body).0
    }

    fn post_with(
        &self,
        path: &str,
        version: &str,
        extra: &str,
        body: &Value,
    ) -> (Vec<Value>, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let body = body.to_string();
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{version}Content-Length: {}\r\n",
            self.addr,
            body.len()
        );
        head.push_str(extra);
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("response head");
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let mut payload = raw[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            payload = dechunk(&payload);
        }
        let text = String::from_utf8_lossy(&payload);
        let messages = if text.trim_start().starts_with('{') {
            vec![serde_json::from_str(&text).expect("JSON answer")]
        } else {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str(d.trim()).ok())
                .collect()
        };
        (messages, head)
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// server-everything in Streamable HTTP mode on a free port.
fn everything_http() -> (Backend, String) {
    let port = free_port();
    let child = Command::new("node")
        .arg(everything_js())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server-everything");
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("none");
    let p = Backend {
        child,
        port,
        _dir: dir,
        record,
    };
    wait_until("server-everything's port", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (p, format!("http://127.0.0.1:{port}/mcp"))
}

fn everything_js() -> PathBuf {
    repo().join("tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// One client session on `path`: the tool's result after the backend answered the sampling.
fn sample_through_serve(serve: &Serve, path: &str) -> Value {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (answer, head) = serve.post(path, None, &init);
    assert_eq!(answer[0]["id"], 1, "{answer:?}");
    let sid = head
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id:"))
        .expect("session id")
        .trim()
        .to_owned();
    serve.post(
        path,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    let (listing, _) = serve.post(
        path,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    );
    let listing = listing.iter().find(|m| m["id"] == 2).expect("listing");
    assert!(
        listing.to_string().contains("trigger-sampling-request"),
        "{listing}"
    );
    let (messages, _) = serve.post(
        path,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "trigger-sampling-request",
        "arguments": {"prompt": "Say hello in one short sentence.", "maxTokens": 16}}}),
    );
    for m in &messages {
        assert_ne!(m["method"], "sampling/createMessage", "{m}");
    }
    let answer = messages
        .iter()
        .find(|m| m["id"] == 3)
        .unwrap_or_else(|| panic!("{messages:?}"))
        .clone();
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    let result: Value = serde_json::from_str(&text[text.find('{').expect("JSON")..]).unwrap();
    assert_eq!(result["model"], "smollm2-135m-instruct", "{result}");
    assert!(
        result["content"]["text"]
            .as_str()
            .unwrap_or("")
            .chars()
            .any(char::is_alphabetic),
        "{result}"
    );
    result
}

#[test]
fn real_llama_cpp_through_serve_stdio_pool_and_http_upstream() {
    let backend = llama_backend();
    let (_everything, url) = everything_http();
    let serve = Serve::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[inference]\nbackend = \"{}\"\n[serve]\npool_size = 1\n\
         [[servers]]\nname = \"stdio\"\ncommand = [\"node\", {:?}, \"stdio\"]\nsampling = \"backend\"\n\
         [[servers]]\nname = \"remote\"\nurl = \"{url}\"\nsampling = \"backend\"\n",
        backend.url(),
        everything_js().to_string_lossy()
    ));
    sample_through_serve(&serve, "/mcp/stdio");
    sample_through_serve(&serve, "/mcp/remote");
    std::thread::sleep(Duration::from_millis(300));
    let audit = serve.audit();
    for server in ["stdio", "remote"] {
        let rec = audit
            .iter()
            .find(|r| r["event"] == "inference.completed" && r["server"] == server)
            .unwrap_or_else(|| panic!("no inference record for {server}: {audit:#?}"));
        assert!(
            rec["detail"]["inference"]["completion_tokens"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{rec}"
        );
    }
    // Usage reaches the metrics too.
    let (status, metrics) = http_get(serve.admin.expect("admin port"), "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("mcp_warden_inference_requests_total{outcome=\"completed\"} 2\n"),
        "{metrics}"
    );
    let completion: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mcp_warden_inference_tokens_total{kind=\"completion\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(completion > 0, "{metrics}");
}

#[test]
fn a_cancelled_sampling_request_closes_the_backend_request_and_gets_no_answer() {
    let backend = scripted_backend();
    let cfg = config(&backend.url(), "sampler", "backend", "timeout_secs = 25");
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "s-slow", "reason": "user gave up"}});
    let mut script = serde_json::Map::new();
    let req = json!({"jsonrpc": "2.0", "id": "s-slow", "method": "sampling/createMessage", "params": {"messages": user("SLOW"), "maxTokens": 5}});
    let done =
        r#"{"jsonrpc":"2.0","id":{{id}},"result":{"content":[{"type":"text","text":"ok"}]}}"#;
    script.insert("slow".into(), json!([req.to_string(), done]));
    script.insert("cancel".into(), json!([cancel.to_string(), done]));
    let mut w = start_upstream(
        Options {
            script: Some(Value::Object(script)),
            config: Some(cfg),
            ..Options::default()
        },
        "sampler",
        &[support::echo_server_bin().into_os_string()],
    );
    w.initialize();
    call(&mut w, "slow");
    // The backend is working on it…
    wait_until(
        "the backend to receive the request",
        Duration::from_secs(10),
        || (!backend.requests().is_empty()).then_some(()),
    );
    let started = Instant::now();
    call(&mut w, "cancel");
    let audit = wait_until("the cancelled record", Duration::from_secs(10), || {
        let a = w.audit();
        a.iter()
            .any(|r| r["event"] == "inference.cancelled")
            .then_some(a)
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(record_of(&audit, "s-slow")["event"], "inference.cancelled");
    // The backend saw its connection closed: the work stops there too.
    wait_until(
        "the backend to see the request closed",
        Duration::from_secs(5),
        || {
            backend
                .requests()
                .iter()
                .any(|r| r.get("disconnected").is_some())
                .then_some(())
        },
    );
    assert!(audit
        .iter()
        .any(|r| r["event"] == "inference.cancel_requested"));
    // Neither the server (it withdrew the request) nor the client (it never saw it) got
    // anything about it.
    assert!(
        !w.upstream()
            .iter()
            .any(|l| String::from_utf8_lossy(l).contains("\"id\":\"s-slow\"")),
        "no answer to a cancelled request"
    );
    while let Some(line) = w.recv_raw(Duration::from_millis(200)) {
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert!(v.get("method").is_none(), "{v}");
    }
    w.finish();
}

#[test]
fn readyz_follows_the_inference_backend_health() {
    let backend = scripted_backend();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let serve_with = |url: &str| {
        Serve::start(&format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n[inference]\nbackend = \"{url}\"\n\
             [[servers]]\nname = \"echo\"\ncommand = [{:?}]\nsampling = \"backend\"\n",
            support::echo_server_bin().to_string_lossy()
        ))
    };
    let up = serve_with(&backend.url());
    let admin = up.admin.expect("admin port on stderr");
    wait_until(
        "/readyz 200 with the backend up",
        Duration::from_secs(20),
        || (http_status(admin, "/readyz") == Some(200)).then_some(()),
    );
    let down = serve_with(&dead);
    let admin = down.admin.expect("admin port on stderr");
    // The pool is warm well within this; only the backend keeps it unready.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(http_status(admin, "/readyz"), Some(503));
}

#[test]
fn per_server_sampling_rate_and_daily_tokens_are_enforced() {
    let backend = scripted_backend();
    let params = json!({"messages": user("hi"), "maxTokens": 5});
    for (limit, rule) in [
        ("sampling_rate = \"1/min\"", "servers.sampling_rate"),
        // Each scripted answer reports 14 tokens: the first spends the day's 10.
        (
            "sampling_tokens_per_day = 10",
            "servers.sampling_tokens_per_day",
        ),
    ] {
        let cfg = format!(
            "[inference]\nbackend = \"{}\"\n[[servers]]\nname = \"sampler\"\ncommand = [\"x\"]\nsampling = \"backend\"\n{limit}\n",
            backend.url()
        );
        let mut w = sampling_server(cfg, &[("a", params.clone()), ("b", params.clone())]);
        call(&mut w, "a");
        let first = server_got(&w, "a", Duration::from_secs(10));
        assert!(first.get("result").is_some(), "{limit}: {first}");
        call(&mut w, "b");
        let second = server_got(&w, "b", Duration::from_secs(10));
        assert_eq!(second["error"]["code"], -32016, "{limit}: {second}");
        assert_eq!(second["error"]["data"]["rule"], rule);
        assert!(second["error"]["data"]["retry_after_ms"].as_u64().unwrap() > 0);
        w.finish();
    }
}

/// POST `body` to the backend on a fresh connection, as the proxy does; the time it took.
fn direct_post(port: u16, body: &[u8]) -> Duration {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = s.set_nodelay(true);
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    started.elapsed()
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The benchmark of issue 12: a routed sampling request's time in the proxy (from the
/// server's request read to the answer written, the audit record's `latency_us`) against the
/// same completion sent straight to the backend. Debug build, shared 2-core machine: the bound
/// asserted is loose; the figures are printed (`--nocapture`).
#[test]
fn benchmark_added_latency_over_the_backend() {
    const N: usize = 30;
    let backend = scripted_backend();
    let params = json!({"messages": user("bench"), "maxTokens": 5, "systemPrompt": "Be brief."});
    let tools: Vec<String> = (0..N).map(|i| format!("b{i}")).collect();
    let requests: Vec<(&str, Value)> = tools.iter().map(|t| (t.as_str(), params.clone())).collect();
    let mut w = sampling_server(config(&backend.url(), "sampler", "backend", ""), &requests);
    for t in &tools {
        call(&mut w, t);
        server_got(&w, t, Duration::from_secs(10));
    }
    w.finish();
    let audit = w.audit();
    let proxied: Vec<f64> = audit
        .iter()
        .filter(|r| r["event"] == "inference.completed")
        .skip(1) // the first also lists the models
        .map(|r| r["latency_us"].as_f64().unwrap() / 1000.0)
        .collect();
    assert_eq!(proxied.len(), N - 1);
    let inside: Vec<f64> = audit
        .iter()
        .filter(|r| r["event"] == "inference.completed")
        .skip(1)
        .map(|r| r["detail"]["inference"]["latency_ms"].as_f64().unwrap())
        .collect();
    eprintln!("of which in the backend client: p50 {:.2} ms", p50(inside));
    let body = serde_json::to_vec(backend.requests().last().unwrap()).unwrap();
    let direct: Vec<f64> = (0..N)
        .map(|_| direct_post(backend.port, &body).as_secs_f64() * 1000.0)
        .collect();
    let (p, d) = (p50(proxied), p50(direct));
    eprintln!(
        "sampling via the proxy p50 {p:.2} ms, straight to the backend p50 {d:.2} ms: added {:.2} ms (n = {N})",
        p - d
    );
    assert!(p - d < 25.0, "added latency {:.2} ms", p - d);
}

/// The modern era (2026-07-28): an rmcp 3.11 server answers `input_required` with a sampling
/// input request; the proxy fulfils it from the backend and retries the call with
/// `inputResponses` and the server's `requestState`, so the client gets the final result only.
#[test]
fn modern_input_required_sampling_is_fulfilled_by_the_backend_and_retried() {
    let backend = scripted_backend();
    let rmcp = support::warden_bin()
        .parent()
        .expect("binary dir")
        .join("examples/rmcp_server");
    assert!(rmcp.exists(), "run `cargo build --examples`");
    let seen = tempfile::tempdir().expect("tempdir");
    let server_in = seen.path().join("server_in.log");
    let mut w = start_upstream(
        Options {
            config: Some(config(&backend.url(), "modern", "backend", "")),
            extra_env: vec![(
                "RMCP_RECORD_IN".into(),
                server_in.to_string_lossy().into_owned(),
            )],
            ..Options::default()
        },
        "modern",
        &[rmcp.into_os_string()],
    );
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}
    });
    w.send(
        &json!({"jsonrpc": "2.0", "id": "l", "method": "tools/list", "params": {"_meta": meta}}),
    );
    let listing = w.recv();
    assert!(listing.to_string().contains("summarize"), "{listing}");
    w.send(
        &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "summarize", "arguments": {"text": "a long text"}, "_meta": meta}}),
    );
    let answer = w.recv();
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "summary by meta-llama/Llama-3.1-8B-Instruct: scripted answer",
        "the client sees the final result, never input_required: {answer}"
    );
    // The backend got the server's sampling request.
    let asked = backend.requests();
    assert_eq!(
        asked[0]["messages"][0]["content"], "Summarize: a long text",
        "{asked:?}"
    );
    assert!(w.recv_raw(Duration::from_millis(300)).is_none());
    w.finish();
    let audit = w.audit();
    let rec = audit
        .iter()
        .find(|r| r["event"] == "inference.completed")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    assert_eq!(rec["method"], "tools/call");
    assert_eq!(rec["detail"]["inference"]["completion_tokens"], 3);
    // What the server read: the call with sampling declared for the client, then the retry.
    let calls: Vec<Value> = std::fs::read_to_string(&server_in)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["method"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let caps = "io.modelcontextprotocol/clientCapabilities";
    assert_eq!(
        calls[0]["params"]["_meta"][caps]["sampling"],
        json!({"tools": {}})
    );
    assert_eq!(calls[1]["params"]["requestState"], "summarize-round-1");
    assert_eq!(
        calls[1]["params"]["inputResponses"]["summary"]["content"]["text"],
        "scripted answer"
    );
    assert_eq!(calls[1]["params"]["arguments"]["text"], "a long text");
}

/// Issue 12 through `serve` with an HTTP upstream: the real rmcp 3.11 server (`summarize`
/// answers `input_required` with a sampling input request), served over streamable HTTP by a
/// second `mcp-warden serve` that leaves sampling to its client, behind the `serve` under test
/// with `sampling = "backend"` and the real llama.cpp backend. The outer proxy fulfils the
/// sampling and retries the call upstream itself: the client gets the final result only.
#[test]
fn modern_input_required_sampling_through_serve_http_upstream_is_fulfilled_by_llama_cpp() {
    let backend = llama_backend();
    let rmcp = support::warden_bin()
        .parent()
        .expect("binary dir")
        .join("examples/rmcp_server");
    assert!(rmcp.exists(), "run `cargo build --examples`");
    let inner = Serve::start(&format!(
        "[serve]\npool_size = 1\n[[servers]]\nname = \"modern\"\ncommand = [{:?}]\n",
        rmcp.to_string_lossy()
    ));
    let outer = Serve::start(&format!(
        "[inference]\nbackend = \"{}\"\n[[servers]]\nname = \"remote\"\nurl = \"http://{}/mcp\"\nsampling = \"backend\"\n",
        backend.url(),
        inner.addr
    ));
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}
    });
    let messages = outer.post_modern(
        "/mcp",
        "tools/call",
        "summarize",
        &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "summarize", "arguments": {"text": "The cat sat on the mat all day."}, "_meta": meta}}),
    );
    let answer = messages
        .iter()
        .find(|m| m["id"] == 7)
        .unwrap_or_else(|| panic!("{messages:?}"));
    assert!(
        answer["result"].get("resultType").is_none()
            || answer["result"]["resultType"] == "complete",
        "the client never sees input_required: {answer}"
    );
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    let generated = text
        .strip_prefix("summary by ")
        .and_then(|t| t.split_once(": "))
        .map(|(model, said)| (model.to_owned(), said.to_owned()))
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(generated.0.contains("smollm2"), "{answer}");
    assert!(generated.1.chars().any(char::is_alphabetic), "{answer}");
    std::thread::sleep(Duration::from_millis(300));
    let audit = outer.audit();
    let rec = audit
        .iter()
        .find(|r| r["event"] == "inference.completed")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    assert_eq!(rec["method"], "tools/call", "{rec}");
    assert!(
        rec["detail"]["inference"]["completion_tokens"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{rec}"
    );
    // The upstream saw the call twice: first with sampling declared, then the retry.
    let calls: Vec<Value> = inner
        .audit()
        .into_iter()
        .filter(|r| r["method"] == "tools/call" && r["direction"] == "client_to_server")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:#?}");
}
