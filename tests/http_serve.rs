//! `mcp-warden serve` through the real binary.
//!
//! - The official TypeScript and Python SDK clients (Streamable HTTP) drive server-everything
//!   through `serve` — once as a stdio child per session, once as an HTTP upstream — and their
//!   normalised transcripts equal a direct connection's (tools, progress, cancellation,
//!   resources, prompts, sampling, elicitation and roots over SSE), with the one documented
//!   difference of `peers_e2e.rs` (a never-listed tool is answered by the proxy).
//! - The edge: Origin and Host (DNS rebinding) → 403, unknown session → 404, a declared or a
//!   chunked body over the cap → 413, slow headers → connection closed, modern-era header /
//!   body mismatch → 400 -32020, credentials and the upstream's session id never cross.
//! - Modern era: a client that disconnects cancels its request in the stdio server.
//! - Signatures with the HTTP header scheme in enforce mode: valid, tampered, expired, replayed.

mod http;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use http::{request, Serve};

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const JSON_ONLY: (&str, &str) = ("Accept", "application/json");

fn echo_config(extra: &str) -> String {
    format!(
        "{extra}\n[[servers]]\nname = \"echo\"\ncommand = [{:?}]\n",
        support::echo_server_bin().to_string_lossy()
    )
}

fn audit_events(serve: &Serve) -> Vec<String> {
    serve
        .audit()
        .iter()
        .map(|r| r["event"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Open a legacy session on `path`; its id.
fn initialize(serve: &Serve, path: &str, extra: &[(&str, &str)]) -> String {
    let mut headers = vec![JSON_ONLY];
    headers.extend_from_slice(extra);
    let r = request(serve.addr, "POST", path, &headers, INIT.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("mcp-session-id").expect("session id").to_owned()
}

// ------------------------------------------------------------------ real SDK clients

fn require_peers() {
    assert!(
        http::peers_installed(),
        "real MCP peers are not installed: run scripts/setup-peers.sh"
    );
}

/// The direct transcript over stdio (the same client, its stdio transport).
fn stdio_transcript(client: &str) -> String {
    let r = http::repo();
    let (prog, script) = match client {
        "ts" => ("node".into(), r.join("tests/peers/ts_client.mjs")),
        _ => (
            r.join(".venv-peers/bin/python"),
            r.join("tests/peers/py_client.py"),
        ),
    };
    let out = std::process::Command::new(prog)
        .arg(script)
        .args(["everything", "--", "node"])
        .arg(http::everything_js())
        .arg("stdio")
        .output()
        .expect("direct client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn everything_stdio_config() -> String {
    format!(
        "[[servers]]\nname = \"everything\"\ncommand = [\"node\", {:?}, \"stdio\"]\n",
        http::everything_js().to_string_lossy()
    )
}

/// Direct and proxied transcripts must be equal but for the documented unknown-tool step.
fn assert_same(label: &str, direct: &str, proxied: &str) {
    let mut d: Value = serde_json::from_str(direct).expect("direct transcript");
    let mut p: Value = serde_json::from_str(proxied).expect("proxied transcript");
    let take = |t: &mut Value| -> Option<Value> {
        let steps = t.get_mut("steps")?.as_array_mut()?;
        let i = steps
            .iter()
            .position(|s| s["request"]["name"] == "no-such-tool")?;
        Some(steps.remove(i))
    };
    let (ds, ps) = (take(&mut d), take(&mut p));
    let ps = ps.expect("proxied transcript has the unknown-tool step");
    assert!(ds
        .expect("direct has it")
        .to_string()
        .contains("no-such-tool"));
    assert_eq!(ps["result"]["code"], -32602, "{label}: {ps}");
    assert!(ps["result"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("Unknown tool: no-such-tool"));
    assert!(
        d.get("failed").is_none(),
        "{label}: direct run failed: {direct}"
    );
    let (d, p) = (
        serde_json::to_string_pretty(&d).unwrap(),
        serde_json::to_string_pretty(&p).unwrap(),
    );
    if d != p {
        let first = d
            .lines()
            .zip(p.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{label}: proxied transcript differs at line {first}:\n direct: {:?}\nproxied: {:?}",
            d.lines().nth(first),
            p.lines().nth(first)
        );
    }
}

fn assert_audit_intact(serve: &Serve) {
    let records = serve.audit();
    assert!(records.iter().any(|r| r["method"] == "tools/call"));
    assert!(records.iter().any(|r| r["direction"] == "server_to_client"));
    let verify = std::process::Command::new(support::warden_bin())
        .args(["audit", "verify"])
        .arg(serve.audit_path())
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
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
    assert!(events.contains(&"http.origin_refused".into()), "{events:?}");
    assert!(events.contains(&"http.host_refused".into()), "{events:?}");
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
    assert!(
        events
            .iter()
            .filter(|e| *e == "http.unknown_session")
            .count()
            >= 2
    );
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
fn slow_headers_are_cut_off() {
    let serve = Serve::start(&echo_config("[serve]\nheader_read_timeout_ms = 500\n"), &[]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest); // EOF (or reset) when the server gives up
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed too early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "not cut off: {waited:?}");
}

#[test]
fn modern_headers_must_match_the_body() {
    let serve = Serve::start(&echo_config(""), &[]);
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let modern = ("MCP-Protocol-Version", "2026-07-28");
    for headers in [
        vec![
            JSON_ONLY,
            modern,
            ("Mcp-Method", "tools/list"),
            ("Mcp-Name", "echo"),
        ],
        vec![
            JSON_ONLY,
            modern,
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "rm"),
        ],
        vec![JSON_ONLY, modern, ("Mcp-Method", "tools/call")],
    ] {
        let r = request(serve.addr, "POST", "/mcp", &headers, body);
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["error"]["code"], -32020, "{:?}", r.json());
    }
    assert!(audit_events(&serve).contains(&"http.header_mismatch".into()));
}

#[test]
fn modern_disconnect_cancels_the_request_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("upstream.log");
    let script = dir.path().join("script.json");
    std::fs::write(&script, r#"{"hang": []}"#).unwrap();
    let serve = Serve::start(
        &echo_config(""),
        &[
            ("ECHO_RECORD", record.to_str().unwrap()),
            ("ECHO_SCRIPT", script.to_str().unwrap()),
        ],
    );
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
    let modern = ("MCP-Protocol-Version", "2026-07-28");
    let list = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{meta}}}}}"#);
    let r = request(
        serve.addr,
        "POST",
        "/mcp",
        &[JSON_ONLY, modern, ("Mcp-Method", "tools/list")],
        list.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        String::from_utf8_lossy(&r.body).contains("hang"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // A call the server never answers; the client reads the stream head and hangs up.
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{{"name":"hang","arguments":{{}},{meta}}}}}"#
    );
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: hang\r\nContent-Length: {}\r\n\r\n{call}",
        serve.addr,
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
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = std::fs::read_to_string(&record).unwrap_or_default();
        if seen.contains("notifications/cancelled") && seen.contains(r#""requestId":77"#) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no cancellation reached the server:\n{seen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(audit_events(&serve).contains(&"http.client_disconnected".into()));
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

// ------------------------------------------------------------------ signatures

fn vector_key() -> (ed25519_dalek::SigningKey, String) {
    let v: Value = serde_json::from_slice(
        &std::fs::read(support::fixture("vectors/signatures.json")).unwrap(),
    )
    .unwrap();
    let pem = v["keys"]["client"]["private_pem"].as_str().unwrap();
    let public = v["keys"]["client"]["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        mcp_warden::sig::keys::signing_key_from_pem(pem).unwrap(),
        public,
    )
}

fn signed(key: &ed25519_dalek::SigningKey, body: &[u8], ts: i64, n: u8) -> Vec<(String, String)> {
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([n; 16]);
    mcp_warden::sig::http_scheme::sign(key, "echo", body, ts, &nonce)
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn header_signatures_are_enforced() {
    let (key, public) = vector_key();
    let cfg = echo_config(&format!(
        "[signatures]\nmode = \"enforce\"\n[[identity.trusted_keys]]\nname = \"agent\"\npublic_key = {public:?}\nrole = \"client\"\n"
    ));
    let serve = Serve::start(&cfg, &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let send = |sid: Option<&str>, body: &[u8], sig: &[(String, String)]| {
        let mut h: Vec<(&str, &str)> = vec![JSON_ONLY];
        if let Some(s) = sid {
            h.push(("Mcp-Session-Id", s));
        }
        h.extend(sig.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        request(serve.addr, "POST", "/mcp", &h, body)
    };
    // Unsigned initialize: refused.
    assert_eq!(send(None, INIT.as_bytes(), &[]).status, 401);
    let init = send(
        None,
        INIT.as_bytes(),
        &signed(&key, INIT.as_bytes(), now, 1),
    );
    assert_eq!(init.status, 200, "{}", String::from_utf8_lossy(&init.body));
    let sid = init.header("mcp-session-id").unwrap().to_owned();
    let sid = Some(sid.as_str());
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(send(sid, note, &signed(&key, note, now, 2)).status, 202);
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(send(sid, list, &signed(&key, list, now, 3)).status, 200);
    let call = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"signed"}}}"#;
    let good_sig = signed(&key, call, now, 4);
    let ok = send(sid, call, &good_sig);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["result"]["content"][0]["text"], "signed");
    let expect = |r: http::Resp, code: i64| {
        assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["error"]["code"], code, "{:?}", r.json());
    };
    let tampered = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"evil"}}}"#;
    expect(send(sid, tampered, &signed(&key, call, now, 5)), -32010);
    let late = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"late"}}}"#;
    expect(send(sid, late, &signed(&key, late, now - 3600, 6)), -32011);
    expect(send(sid, call, &good_sig), -32012);
    let events = audit_events(&serve);
    for e in [
        "auth.signature_invalid",
        "auth.timestamp_out_of_window",
        "auth.replay",
    ] {
        assert!(events.contains(&e.into()), "{e} not audited: {events:?}");
    }
}
