//! `mcp-warden serve` through the real binary.
//!
//! - The official TypeScript and Python SDK clients (Streamable HTTP) drive server-everything
//!   through `serve` — once as a stdio child per session, once as an HTTP upstream — and their
//!   normalised transcripts equal a direct connection's (tools, progress, cancellation,
//!   resources, prompts, sampling, elicitation and roots over SSE), with the one documented
//!   difference of `peers_e2e.rs` (a never-listed tool is answered by the proxy).
//! - The edge: Origin and Host (DNS rebinding) → 403, unknown session → 404, a declared or a
//!   chunked body over the cap → 413, slow headers → 408 and closed, credentials and the
//!   upstream's session id never cross.
//! - Under attack (`http/attacks.rs`, in this binary only): sessions owned by the key of either signature scheme,
//!   legacy SSE admitted like `initialize`, per-client session and connection caps (429,
//!   -32016), upstream error bodies inspected or replaced, slow bodies 408, large hostile
//!   bodies off the async workers.
//! - Modern era (`http/modern_era.rs`): header / body mismatch → 400 -32020; a client that
//!   disconnects cancels its request in the stdio server.
//! - Signatures with the HTTP header scheme in enforce mode (`http/signing.rs`): valid,
//!   tampered, expired, replayed.

mod http;
mod support;

#[path = "http/attacks.rs"]
mod attacks;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use http::peers::{assert_audit_intact, assert_same, everything_stdio_config, stdio_transcript};
use http::{
    audit_events, echo_config, initialize, modern_tools_list, open_hanging_modern_call, request,
    Serve, INIT, JSON_ONLY,
};

// ------------------------------------------------------------------ real SDK clients

fn require_peers() {
    assert!(
        http::peers_installed(),
        "real MCP peers are not installed: run scripts/setup-peers.sh"
    );
}

fn sdk_through_stdio_upstream(client: &str) {
    require_peers();
    let direct = stdio_transcript(client);
    let serve = Serve::start(&everything_stdio_config(), &[]);
    let proxied = http::transcript(client, &serve.url("/mcp/everything"));
    assert_same(
        &format!("{client} via serve (stdio upstream)"),
        &direct,
        &proxied,
    );
    assert_audit_intact(&serve);
}

fn sdk_through_http_upstream(client: &str) {
    require_peers();
    let (_up, url) = http::everything_http();
    let direct = http::transcript(client, &url);
    let serve = Serve::start(
        &format!("[[servers]]\nname = \"everything\"\nurl = {url:?}\n"),
        &[],
    );
    let proxied = http::transcript(client, &serve.url("/mcp"));
    assert_same(
        &format!("{client} via serve (HTTP upstream)"),
        &direct,
        &proxied,
    );
    assert_audit_intact(&serve);
}

#[test]
fn typescript_sdk_stdio_upstream() {
    sdk_through_stdio_upstream("ts");
}

#[test]
fn python_sdk_stdio_upstream() {
    sdk_through_stdio_upstream("py");
}

#[test]
fn typescript_sdk_http_upstream() {
    sdk_through_http_upstream("ts");
}

#[test]
fn python_sdk_http_upstream() {
    sdk_through_http_upstream("py");
}

// ------------------------------------------------------------------ edge

#[test]
fn origin_and_host_are_checked() {
    let serve = Serve::start(&echo_config(""), &[]);
    let evil = request(
        serve.addr,
        "POST",
        "/mcp",
        &[JSON_ONLY, ("Origin", "https://evil.example")],
        INIT.as_bytes(),
    );
    assert_eq!(evil.status, 403);
    let rebound = request(
        serve.addr,
        "POST",
        "/mcp",
        &[JSON_ONLY, ("Host", "evil.example:80")],
        INIT.as_bytes(),
    );
    assert_eq!(rebound.status, 403);
    let port = serve.addr.port().to_string();
    let local = format!("http://localhost:{port}");
    let ok = request(
        serve.addr,
        "POST",
        "/mcp",
        &[JSON_ONLY, ("Origin", &local)],
        INIT.as_bytes(),
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let events = audit_events(&serve);
    assert!(
        events.contains(&"http.origin_rejected".into()),
        "{events:?}"
    );
    assert!(events.contains(&"http.host_rejected".into()), "{events:?}");
}

#[test]
fn unknown_session_is_404_and_delete_ends_a_session() {
    let serve = Serve::start(&echo_config(""), &[]);
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let bogus = request(
        serve.addr,
        "POST",
        "/mcp",
        &[
            JSON_ONLY,
            ("Mcp-Session-Id", "00112233445566778899aabbccddeeff"),
        ],
        ping,
    );
    assert_eq!(bogus.status, 404);
    let sid = initialize(&serve, "/mcp", &[]);
    assert_eq!(sid.len(), 32, "128 random bits as hex: {sid}");
    let other = initialize(&serve, "/mcp/echo", &[]);
    assert_ne!(sid, other);
    let hdrs = [JSON_ONLY, ("Mcp-Session-Id", sid.as_str())];
    let pong = request(serve.addr, "POST", "/mcp", &hdrs, ping);
    assert_eq!(pong.status, 200);
    assert_eq!(pong.json()["result"], json!({}));
    let del = request(serve.addr, "DELETE", "/mcp", &hdrs, b"");
    assert_eq!(del.status, 200);
    let after = request(serve.addr, "POST", "/mcp", &hdrs, ping);
    assert_eq!(after.status, 404);
    let events = audit_events(&serve);
    assert!(events.iter().filter(|e| *e == "session.unknown").count() >= 2);
}

#[test]
fn bodies_over_the_cap_are_413() {
    let serve = Serve::start(&echo_config("[proxy]\nmax_message_bytes = 4096\n"), &[]);
    // Declared 100 MiB: refused on the header, before a single body byte is sent.
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
        serve.addr
    )
    .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).expect("answer before the body");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Chunked: no length up front; cut off at the cap.
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        serve.addr
    )
    .unwrap();
    let chunk = "x".repeat(1000);
    for _ in 0..6 {
        let _ = write!(s, "{:x}\r\n{chunk}\r\n", chunk.len());
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let r = http::read_response(&mut s);
    assert_eq!(r.status, 413);
    let records = serve.audit();
    assert_eq!(
        records
            .iter()
            .filter(|r| r["event"] == "frame.oversize")
            .count(),
        2,
        "{records:?}"
    );
}

#[test]
fn slow_headers_get_408_and_a_record() {
    let serve = Serve::start(&echo_config("[serve]\nheader_read_timeout_ms = 500\n"), &[]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest); // the 408, then EOF when the server gives up
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed too early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "not cut off: {waited:?}");
    let r = http::parse_response(&rest);
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&rest));
    assert_eq!(
        r.json()["error"]["data"]["rule"],
        "serve.header_read_timeout_ms"
    );
    assert!(audit_events(&serve).contains(&"http.timeout".into()));
}

#[test]
fn credentials_and_upstream_session_never_cross() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("headers.jsonl");
    let (_up, url) = http::echo_http(&record);
    let serve = Serve::start(
        &format!("[[servers]]\nname = \"echo\"\nurl = {url:?}\n"),
        &[],
    );
    let secrets = [
        ("Authorization", "Bearer client-secret-token"),
        ("Cookie", "session=client-cookie"),
        ("X-MCP-Key-Id", "0011223344556677"),
        ("Mcp-Param-Region", "eu"),
    ];
    let init = {
        let mut h = vec![JSON_ONLY];
        h.extend_from_slice(&secrets);
        request(serve.addr, "POST", "/mcp", &h, INIT.as_bytes())
    };
    assert_eq!(init.status, 200, "{}", String::from_utf8_lossy(&init.body));
    let sid = init
        .header("mcp-session-id")
        .expect("our session id")
        .to_owned();
    assert_eq!(sid.len(), 32);
    let hdrs = [
        JSON_ONLY,
        ("Mcp-Session-Id", sid.as_str()),
        ("Authorization", "Bearer x"),
    ];
    let list = request(
        serve.addr,
        "POST",
        "/mcp",
        &hdrs,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    );
    assert_eq!(list.status, 200);
    for r in [&init, &list] {
        let all = format!("{:?}{}", r.headers, String::from_utf8_lossy(&r.body));
        assert!(
            !all.contains("upstream-secret-session-id"),
            "upstream session id leaked: {all}"
        );
    }
    assert_eq!(
        request(serve.addr, "DELETE", "/mcp", &hdrs, b"").status,
        200
    );
    let seen: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for r in &seen {
        let h = r["headers"].as_object().unwrap();
        for banned in ["authorization", "cookie", "x-mcp-key-id"] {
            assert!(
                !h.contains_key(banned),
                "{banned} reached the upstream: {h:?}"
            );
        }
    }
    assert_eq!(seen[0]["headers"]["mcp-param-region"], "eu");
    assert!(seen[0]["headers"].get("mcp-session-id").is_none());
    assert_eq!(
        seen[1]["headers"]["mcp-session-id"],
        "upstream-secret-session-id"
    );
    assert_eq!(seen[2]["method"], "DELETE");
    assert_eq!(
        seen[2]["headers"]["mcp-session-id"],
        "upstream-secret-session-id"
    );
}

/// Issue 16: the proxy keeps its upstream connection alive between calls (hyper's pool, one
/// client per route), so the upstream does not pay a TCP handshake and a new connection per call.
#[test]
fn upstream_connection_is_reused_across_calls() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let (_up, url) = http::echo_http(&record);
    let serve = Serve::start(
        &format!("[[servers]]\nname = \"echo\"\nurl = {url:?}\n"),
        &[],
    );
    let sid = initialize(&serve, "/mcp", &[]);
    let hdrs = [JSON_ONLY, ("Mcp-Session-Id", sid.as_str())];
    const CALLS: usize = 20;
    for i in 1..=CALLS {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"echo","arguments":{{}}}}}}"#
        );
        let r = request(serve.addr, "POST", "/mcp", &hdrs, body.as_bytes());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let seen: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["method"] == "POST")
        .collect();
    assert!(seen.len() > CALLS, "{} POSTs recorded", seen.len());
    let peers: std::collections::BTreeSet<u64> =
        seen.iter().filter_map(|r| r["peer"].as_u64()).collect();
    // One connection, allowing one more for a request that overlapped (the pool opens a
    // second only when the first is busy); a connection per call would be > 20.
    assert!(
        (1..=2).contains(&peers.len()),
        "{} upstream connections for {} POSTs",
        peers.len(),
        seen.len()
    );
}

/// Issue 9 (10): an unsupported `MCP-Protocol-Version` is answered with -32022 whose message
/// says so (it read "Internal error").
#[test]
fn unsupported_protocol_version_says_so() {
    let serve = Serve::start(&echo_config(""), &[]);
    let r = request(
        serve.addr,
        "POST",
        "/mcp",
        &[JSON_ONLY, ("MCP-Protocol-Version", "1999-01-01")],
        INIT.as_bytes(),
    );
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"]["code"], -32022, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("Unsupported protocol version") && !message.contains("Internal"),
        "{body}"
    );
    assert!(body["error"]["data"]["reason"]
        .as_str()
        .is_some_and(|s| s.contains("1999-01-01")));
}

/// Issue 10: a call before any listing, through `serve`, to a stdio and to an HTTP upstream:
/// the proxy lists and pins first, then judges the call (it used to be "Unknown tool").
#[test]
fn a_call_before_any_listing_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, url) = http::echo_http(&dir.path().join("record.jsonl"));
    let configs = [
        echo_config(""),
        format!("[[servers]]\nname = \"echo\"\nurl = {url:?}\n"),
    ];
    for config in configs {
        let serve = Serve::start(&config, &[]);
        let sid = initialize(&serve, "/mcp", &[]);
        let hdrs = [JSON_ONLY, ("Mcp-Session-Id", sid.as_str())];
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"cold"}}}"#;
        let r = request(serve.addr, "POST", "/mcp", &hdrs, call);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let body = r.json();
        assert_eq!(body["id"], 7, "{body}");
        assert!(body["result"].is_object(), "{config}: {body}");
        // A tool the server does not offer is still unknown.
        let other = br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"exec","arguments":{}}}"#;
        let r = request(serve.addr, "POST", "/mcp", &hdrs, other);
        assert_eq!(r.json()["error"]["code"], -32602);
    }
}

// ------------------------------------------------------------------ approval through the client

/// Issue 11 in `serve`, legacy era: the official TypeScript SDK client (elicitation handler)
/// over streamable HTTP, in front of the real filesystem server, under a policy that asks for
/// approval of `write_file`. The proxy's `elicitation/create` arrives on the call's own POST
/// stream and the SDK answers it with a POST of its own: accepted → the server writes the file;
/// declined / cancelled → -32014 saying which, nothing written. The audit names the channel.
#[test]
fn serve_asks_the_typescript_sdk_client_for_approval() {
    serve_asks_the_sdk_client_for_approval("ts");
}

/// The same with the official Python SDK client.
#[test]
fn serve_asks_the_python_sdk_client_for_approval() {
    serve_asks_the_sdk_client_for_approval("py");
}

fn serve_asks_the_sdk_client_for_approval(client: &str) {
    require_peers();
    let base = tempfile::tempdir().unwrap();
    let b = base.path().canonicalize().unwrap();
    let (root, policies) = (b.join("root"), b.join("policies"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("fs.toml"),
        "[server]\nmatch = [\"fs\"]\n\n[[tool]]\nname = \"write_file\"\nrisk = \"high\"\naction = \"approve\"\n",
    )
    .unwrap();
    let server = http::repo()
        .join("tests/peers/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    let config = format!(
        "[policy]\napproval_timeout_secs = 20\nrisk_thresholds = {{ low = 0.0, medium = 0.0, high = 0.0 }}\n\n[[servers]]\nname = \"fs\"\ncommand = [\"node\", {:?}, {:?}]\n",
        server.to_string_lossy(),
        root.to_string_lossy()
    );
    let serve = Serve::start(
        &config,
        &[("MCP_WARDEN_POLICY_DIR", policies.to_str().unwrap())],
    );
    let run = |mode: &str, file: &str| -> Value {
        let (program, script) = match client {
            "py" => (
                http::repo().join(".venv-peers/bin/python"),
                "tests/peers/py_approval.py",
            ),
            _ => ("node".into(), "tests/peers/ts_approval.mjs"),
        };
        let out = std::process::Command::new(program)
            .arg(http::repo().join(script))
            .arg(mode)
            .arg(root.join(file))
            .arg(format!("written after {mode}"))
            .arg("--")
            .arg(serve.url("/mcp/fs"))
            .output()
            .expect("node");
        assert!(
            out.status.success(),
            "{mode}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            serve.stderr.lock().unwrap()
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{mode}: not JSON ({e}): {:?}", out.stdout))
    };
    let accepted = run("accept", "accepted.txt");
    assert_eq!(
        accepted["asked"].as_array().map(Vec::len),
        Some(1),
        "{accepted}"
    );
    assert!(
        accepted["asked"][0]
            .as_str()
            .is_some_and(|m| m.contains("write_file") && m.contains("accepted.txt")),
        "{accepted}"
    );
    assert!(accepted["error"].is_null(), "{accepted}");
    assert_eq!(
        std::fs::read_to_string(root.join("accepted.txt")).unwrap_or_default(),
        "written after accept"
    );
    for (mode, word) in [("decline", "declined"), ("cancel", "cancelled")] {
        let file = format!("{mode}.txt");
        let r = run(mode, &file);
        assert_eq!(r["error"]["code"], -32014, "{mode}: {r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(word)),
            "{mode}: {r}"
        );
        assert!(!root.join(&file).exists(), "{mode}: the file was written");
    }
    let audit = serve.audit();
    let granted = audit
        .iter()
        .find(|r| r["event"] == "approval.granted")
        .expect("approval.granted");
    assert_eq!(
        granted["detail"]["approval"]["channel"], "client_elicitation",
        "{granted}"
    );
    // The client's answers were consumed by the proxy, never forwarded to the server.
    assert_eq!(
        audit
            .iter()
            .filter(|r| r["event"] == "approval.client_answered")
            .count(),
        3
    );
}

/// Issue 11 in `serve`, modern era (stateless): a call that needs approval is answered
/// `input_required` with a `requestState` bound to the verified key that signed the request.
/// The same state retried by another trusted key is refused (-32014), by its own key it runs
/// the call once (a replay is refused), and a declined answer is -32014.
#[test]
fn serve_modern_approval_state_is_bound_to_the_signing_key() {
    let (key_a, public_a) = http::signing::vector_key();
    let key_b = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let public_b = mcp_warden::sig::keys::public_key_to_string(&key_b.verifying_key());
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("echo.toml"),
        "[server]\nmatch = [\"echo\"]\n\n[[tool]]\nname = \"echo\"\nrisk = \"high\"\naction = \"approve\"\n",
    )
    .unwrap();
    let cfg = echo_config(&format!(
        "[policy]\nrisk_thresholds = {{ low = 0.0, medium = 0.0, high = 0.0 }}\n[signatures]\nmode = \"enforce\"\n\
         [[identity.trusted_keys]]\nname = \"a\"\npublic_key = {public_a:?}\nrole = \"client\"\n\
         [[identity.trusted_keys]]\nname = \"b\"\npublic_key = {public_b:?}\nrole = \"client\"\n"
    ));
    let serve = Serve::start(
        &cfg,
        &[("MCP_WARDEN_POLICY_DIR", policies.path().to_str().unwrap())],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut nonce = 0u8;
    let mut call = |key: &ed25519_dalek::SigningKey, extra: Value| -> Value {
        let mut params = json!({"name":"echo","arguments":{"text":"approved?"},"_meta":{
            "io.modelcontextprotocol/protocolVersion":"2026-07-28",
            "io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}}}});
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        let body =
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":params}).to_string();
        nonce += 1;
        let sig = http::signing::signed(key, body.as_bytes(), now, nonce);
        let mut h: Vec<(&str, &str)> = vec![
            JSON_ONLY,
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "echo"),
        ];
        h.extend(sig.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let r = request(serve.addr, "POST", "/mcp", &h, body.as_bytes());
        assert_eq!(r.status / 100, 2, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    };
    let answer = |approve: bool, state: &Value| {
        json!({"requestState": state, "inputResponses": {"mcp-warden/approval": {
            "action": "accept", "content": {"approve": approve}}}})
    };
    let first = call(&key_a, json!({}));
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let state = first["result"]["requestState"].clone();
    assert!(state.is_string(), "{first}");
    let key = first["result"]["inputRequests"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .expect("an input request");
    assert_eq!(key, "mcp-warden/approval", "{first}");
    // Another trusted key presenting A's state: refused, nothing runs.
    let stolen = call(&key_b, answer(true, &state));
    assert_eq!(stolen["error"]["code"], -32014, "{stolen}");
    assert!(
        stolen["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not match")),
        "{stolen}"
    );
    // A's own retry runs the call, once.
    let ok = call(&key_a, answer(true, &state));
    assert_eq!(ok["result"]["content"][0]["text"], "approved?", "{ok}");
    let replayed = call(&key_a, answer(true, &state));
    assert_eq!(replayed["error"]["code"], -32014, "{replayed}");
    assert!(
        replayed["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already used")),
        "{replayed}"
    );
    // Declined: -32014 saying so.
    let again = call(&key_a, json!({}));
    let state = again["result"]["requestState"].clone();
    let declined = call(&key_a, answer(false, &state));
    assert_eq!(declined["error"]["code"], -32014, "{declined}");
    let events = audit_events(&serve);
    assert!(
        events.contains(&"approval.state_refused".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"approval.granted".to_owned()),
        "{events:?}"
    );
}

/// Issue 11 in `serve`: the ways an ask through the client fails, scripted on the wire. A call
/// whose POST does not take an event stream cannot be asked: -32014 at once, saying why. A
/// client that closes the call's stream after the question arrived is the client gone: the call
/// ends -32014 (client_disconnected) in the audit and the server never sees it. A malformed
/// answer is -32014 saying so.
#[test]
fn serve_ask_through_the_client_fails_closed() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("echo.toml"),
        "[server]\nmatch = [\"echo\"]\n\n[[tool]]\nname = \"echo\"\nrisk = \"high\"\naction = \"approve\"\n",
    )
    .unwrap();
    let serve = Serve::start(
        &echo_config("[policy]\napproval_timeout_secs = 20\nrisk_thresholds = { low = 0.0, medium = 0.0, high = 0.0 }\n"),
        &[("MCP_WARDEN_POLICY_DIR", policies.path().to_str().unwrap())],
    );
    const BOTH: (&str, &str) = ("Accept", "application/json, text/event-stream");
    let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = request(serve.addr, "POST", "/mcp", &[BOTH], init);
    assert_eq!(r.status, 200);
    let sid = r.header("mcp-session-id").expect("session").to_owned();
    let call = |id: u32| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"x{id}"}}}}}}"#
        )
    };
    // JSON only: nowhere to ask.
    let r = request(
        serve.addr,
        "POST",
        "/mcp",
        &[JSON_ONLY, ("Mcp-Session-Id", &sid)],
        call(1).as_bytes(),
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], -32014, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("text/event-stream")),
        "{v}"
    );
    // The question arrives on the call's stream; the client hangs up.
    let open_ask = |id: u32| open_ask(serve.addr, &sid, &call(id));
    let (s, _) = open_ask(2);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        let audit = serve.audit();
        if let Some(r) = audit.iter().find(|r| {
            r["event"] == "approval.not_granted"
                && r["detail"]["approval"]["outcome"] == "client_disconnected"
        }) {
            break r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no disconnect record: {audit:#?}"
        );
    };
    assert_eq!(gone["code"], -32014, "{gone}");
    // A malformed answer (approve is not a boolean).
    let (s, ask) = open_ask(3);
    let answer = json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"approve":"yes"}}});
    let refused = answer_ask(serve.addr, &sid, s, &answer, 3);
    assert_eq!(refused["error"]["code"], -32014, "{refused}");
    // Nothing reached the server: no call was approved.
    assert!(!audit_events(&serve).contains(&"approval.granted".to_owned()));
}

/// POST `body` (a held call) on session `sid` and read its event stream up to the proxy's
/// `elicitation/create`; the stream stays open for the call's answer.
fn open_ask(addr: std::net::SocketAddr, sid: &str, body: &str) -> (TcpStream, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nMcp-Session-Id: {sid}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let ask = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                break v;
            }
        }
    };
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    (s, ask)
}

/// POST the client's `answer` to the proxy's question (consumed: 202), then read the asking
/// stream `s` to its end: the message with JSON-RPC id `id` on it (the call's own answer).
fn answer_ask(
    addr: std::net::SocketAddr,
    sid: &str,
    s: TcpStream,
    answer: &Value,
    id: u64,
) -> Value {
    let r = request(
        addr,
        "POST",
        "/mcp",
        &[JSON_ONLY, ("Mcp-Session-Id", sid)],
        answer.to_string().as_bytes(),
    );
    assert_eq!(r.status, 202, "the answer is consumed");
    let messages = stream_messages(s);
    let found = messages.iter().find(|m| m["id"] == id).cloned();
    found.unwrap_or_else(|| panic!("no answer {id} on the stream: {messages:?}"))
}

/// The rest of an answer stream: its JSON-RPC messages.
fn stream_messages(mut s: TcpStream) -> Vec<Value> {
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    String::from_utf8_lossy(&rest)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .collect()
}

/// Issue 11 in `serve` with an HTTP upstream: the call held for approval is asked on its own
/// stream; the client's accept (a POST of its own, consumed: 202, never sent upstream) runs the
/// call upstream, and its answer follows the question on the same stream.
#[test]
fn serve_ask_through_the_client_to_an_http_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let (_up, url) = http::echo_http(&record);
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("echo.toml"),
        "[server]\nmatch = [\"echo\"]\n\n[[tool]]\nname = \"echo\"\nrisk = \"high\"\naction = \"approve\"\n",
    )
    .unwrap();
    let serve = Serve::start(
        &format!("[policy]\napproval_timeout_secs = 20\nrisk_thresholds = {{ low = 0.0, medium = 0.0, high = 0.0 }}\n[[servers]]\nname = \"echo\"\nurl = {url:?}\n"),
        &[("MCP_WARDEN_POLICY_DIR", policies.path().to_str().unwrap())],
    );
    let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"t","version":"1"}}}"#;
    let both = ("Accept", "application/json, text/event-stream");
    let r = request(serve.addr, "POST", "/mcp", &[both], init);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sid = r.header("mcp-session-id").expect("session").to_owned();
    let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"approved"}}}"#;
    let (s, ask) = open_ask(serve.addr, &sid, call);
    let answer = json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"approve":true}}});
    let result = answer_ask(serve.addr, &sid, s, &answer, 5);
    assert_eq!(result["result"]["echo"], "tools/call", "{result}");
    let upstream = std::fs::read_to_string(&record).unwrap();
    assert!(upstream.contains("approved"), "the call ran upstream");
    assert!(
        !upstream.contains("mcp-warden/approval"),
        "the proxy's elicitation answer never reaches the upstream: {upstream}"
    );
}

// ------------------------------------------------------------------ stdio upstream on the runtime

/// Issue 18: a stdio upstream's process is served by one task on `serve`'s runtime, not by
/// threads of its own (it used to take three: stdin writer, stdout reader, reaper). Eight more
/// legacy sessions, then eight modern requests in flight (a process each), leave the thread
/// count where it was, give or take the blocking pool, where it used to grow by 24 each time.
#[test]
fn stdio_upstreams_take_no_thread_per_process() {
    const N: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    std::fs::write(&script, r#"{"hang": []}"#).unwrap();
    let serve = Serve::start(
        &echo_config("[serve]\nmax_sessions_per_client = 64\n"),
        &[("ECHO_SCRIPT", script.to_str().unwrap())],
    );
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
    // Warm up both eras (runtime workers, the blocking pool's first threads, the pins).
    let warm = initialize(&serve, "/mcp", &[]);
    let hdrs = [JSON_ONLY, ("Mcp-Session-Id", warm.as_str())];
    assert_eq!(request(serve.addr, "POST", "/mcp", &hdrs, ping).status, 200);
    modern_tools_list(&serve);
    let before = serve.threads();

    let sessions: Vec<String> = (0..N).map(|_| initialize(&serve, "/mcp", &[])).collect();
    for sid in &sessions {
        let hdrs = [JSON_ONLY, ("Mcp-Session-Id", sid.as_str())];
        assert_eq!(request(serve.addr, "POST", "/mcp", &hdrs, ping).status, 200);
    }
    let legacy = serve.threads();

    // Calls the server never answers: each holds its own process while its stream is open.
    let streams: Vec<TcpStream> = (0..N)
        .map(|_| open_hanging_modern_call(serve.addr, meta, Duration::from_secs(10)))
        .collect();
    // The calls reached their processes (a process each, all still running).
    std::thread::sleep(Duration::from_millis(300));
    let in_flight = serve.threads();
    drop(streams);

    eprintln!(
        "serve threads: {before} → {legacy} after {N} legacy sessions → {in_flight} with {N} modern requests in flight"
    );
    assert!(
        legacy.saturating_sub(before) < N,
        "{N} legacy sessions took {} threads ({before} → {legacy})",
        legacy.saturating_sub(before)
    );
    assert!(
        in_flight.saturating_sub(legacy) < N,
        "{N} modern requests in flight took {} threads ({legacy} → {in_flight})",
        in_flight.saturating_sub(legacy)
    );
}

/// A stdio MCP server that answers a 2025-03-26 batch with one array (as JSON-RPC says).
const STDIO_BATCH_ECHO: &str = r#"
import json, sys
def answer(m):
    if m.get("method") == "initialize":
        r = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {}, "serverInfo": {"name": "b", "version": "1"}}
    else:
        r = {"echo": m.get("method")}
    return {"jsonrpc": "2.0", "id": m["id"], "result": r}
for line in sys.stdin:
    m = json.loads(line)
    if isinstance(m, list):
        out = [answer(x) for x in m if "id" in x and "method" in x]
        if out:
            print(json.dumps(out), flush=True)
    elif "id" in m and "method" in m:
        print(json.dumps(answer(m)), flush=True)
"#;

/// A 2025-03-26 batch partly refused by the proxy (a look-alike method name) is answered
/// whole: the refused element's error and the server's answer to the rest, in one array —
/// through an HTTP upstream (the refused element used to get no answer at all) and through a
/// stdio one (the server's batch answer used to be routed nowhere). Every request gets exactly
/// one response.
#[test]
fn a_partly_refused_batch_is_answered_whole() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let (_up, url) = http::echo_http(&record);
    let configs = [
        format!("[[servers]]\nname = \"echo\"\nurl = {url:?}\n"),
        format!(
            "[[servers]]\nname = \"echo\"\ncommand = [\"python3\", \"-c\", {STDIO_BATCH_ECHO:?}]\n"
        ),
    ];
    for config in configs {
        let serve = Serve::start(&config, &[]);
        let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let r = request(serve.addr, "POST", "/mcp", &[JSON_ONLY], init);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let sid = r.header("mcp-session-id").expect("session id").to_owned();
        let hdrs = [
            JSON_ONLY,
            ("Mcp-Session-Id", sid.as_str()),
            ("MCP-Protocol-Version", "2025-03-26"),
        ];
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"Ping"}]"#;
        let r = request(serve.addr, "POST", "/mcp", &hdrs, batch);
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 200, "{config}: {body}");
        let answers: Vec<Value> = serde_json::from_slice(&r.body).expect(&body);
        assert_eq!(answers.len(), 2, "{config}: {body}");
        let by_id = |id: i64| answers.iter().find(|a| a["id"] == id).expect(&body);
        assert!(by_id(1)["result"].is_object(), "{config}: {body}");
        assert!(by_id(2)["error"]["code"].is_i64(), "{config}: {body}");
    }
}
