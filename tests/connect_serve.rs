//! End to end: client → `mcp-warden connect` → `mcp-warden serve` → echo server, with signatures
//! enforced both ways (SPEC §4):
//!
//! - serve enforces the header scheme for connect's client key and signs every result with its
//!   identity key; connect pins that key on first contact (or from `[[servers]] public_key`) and
//!   every result the client receives carries a valid signature; proxy errors pass unsigned;
//! - a result tampered with on the way (a relay flipping one byte) and a server whose key changed
//!   after the pin are refused by connect with -32010, and nothing else reaches stdout;
//! - an unsigned request straight to serve is refused 401; the capabilities document (per route
//!   and at the root) publishes the key and the pinned tools; the admin port reports readiness and
//!   the metrics of the traffic.

#[path = "connect_serve/harness.rs"]
mod harness;
mod support;

use std::time::{Duration, Instant};

use harness::{connect_state, http, http_echo, signed, tamper_relay, Connect, Serve};
use mcp_warden::sig::keys::{kid_of, public_key_to_string};
use mcp_warden::sig::message_scheme;
use mcp_warden::sig::VerifyingKey;
use serde_json::Value;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

fn call(id: i64, tool: &str, text: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"{text}"}}}}}}"#
    )
}

/// A result signed by `key` for audience `echo`.
fn assert_signed(v: &Value, key: &VerifyingKey) {
    assert!(v.get("result").is_some(), "not a result: {v}");
    let sig = message_scheme::verify(v, key, Some("echo"))
        .unwrap_or_else(|e| panic!("bad response signature ({e}): {v}"));
    assert_eq!(sig.kid, kid_of(key));
}

/// initialize, initialized, tools/list: each result checked.
fn handshake(c: &mut Connect, key: &VerifyingKey) {
    c.send(INIT);
    let (_, init) = c.recv();
    assert_signed(&init, key);
    assert_eq!(init["result"]["serverInfo"]["name"], "echo");
    c.send(INITIALIZED);
    c.send(LIST);
    let (_, list) = c.recv();
    assert_eq!(list["id"], 2);
    assert_signed(&list, key);
    assert_eq!(list["result"]["tools"][0]["name"], "echo");
}

#[test]
fn signed_both_ways_with_trust_on_first_use() {
    let serve = Serve::start();
    let key = serve.key();
    let state = connect_state(None);
    let mut c = Connect::start(&serve.url("/mcp/echo"), state.path());
    handshake(&mut c, &key);
    // First contact pinned the key serve publishes.
    let pinned = std::fs::read_to_string(state.path().join("connect/echo.key")).expect("pin");
    assert_eq!(pinned.trim(), public_key_to_string(&key));

    c.send(&call(3, "echo", "hello"));
    let (_, out) = c.recv();
    assert_eq!(out["id"], 3);
    assert_signed(&out, &key);
    assert_eq!(out["result"]["content"][0]["text"], "hello");
    // A proxy error has no result to sign: it passes unsigned.
    c.send(&call(4, "nope", "x"));
    let (_, err) = c.recv();
    assert_eq!(err["id"], 4);
    assert_eq!(err["error"]["code"], -32602, "{err}");
    assert!(c.finish().is_empty(), "nothing else on stdout");

    // Unsigned, straight to serve: 401 with the signature error.
    let json = ("Accept".to_owned(), "application/json".to_owned());
    let (status, body) = http(serve.addr, "POST", "/mcp/echo", &[json], INIT.as_bytes());
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("-32010"), "{body}");

    // The capabilities document: signed requests only (enforce), per route and at the root.
    let doc_path = "/mcp/echo/.well-known/mcp/capabilities";
    assert_eq!(http(serve.addr, "GET", doc_path, &[], b"").0, 401);
    for (n, path) in [(40, doc_path), (41, "/.well-known/mcp/capabilities")] {
        let (status, body) = http(serve.addr, "GET", path, &signed(b"", n), b"");
        assert_eq!(status, 200, "{path}: {body}");
        let doc: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(doc["server"]["name"], "echo");
        assert_eq!(doc["server"]["public_key"], public_key_to_string(&key));
        assert_eq!(doc["server"]["kid"], kid_of(&key));
        assert_eq!(
            doc["capabilities"][0]["name"], "echo",
            "pinned on tools/list"
        );
        assert!(doc["attestation"].is_null());
    }

    // The admin port: ready (pool warm), and the traffic above counted.
    let admin = serve.admin.expect("admin address on stderr");
    let deadline = Instant::now() + Duration::from_secs(10);
    while http(admin, "GET", "/readyz", &[], b"").0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, metrics) = http(admin, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"mcp_warden_messages_total{direction="client_to_server",method="tools/call",decision="allow"} 1"#
        ),
        "{metrics}"
    );
    let upstream_count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mcp_warden_upstream_latency_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("upstream latency histogram");
    assert!(upstream_count >= 3, "{metrics}");
    assert!(
        metrics.contains("decision=\"deny\""),
        "edge refusals counted: {metrics}"
    );
}

#[test]
fn a_tampered_result_is_refused() {
    let serve = Serve::start();
    let key = serve.key();
    let (_relay, relay) = tamper_relay(serve.addr);
    let url = format!("http://{relay}/mcp/echo");
    // Pinned from config this time, not on first use.
    let config = format!(
        "[[servers]]\nname = \"echo\"\nurl = {url:?}\npublic_key = {:?}\n",
        public_key_to_string(&key)
    );
    let state = connect_state(Some(&config));
    let mut c = Connect::start(&url, state.path());
    handshake(&mut c, &key);
    c.send(&call(3, "echo", "tamper-me"));
    let (line, out) = c.recv();
    assert_eq!(out["id"], 3);
    assert_eq!(out["error"]["code"], -32010, "{out}");
    assert!(
        !line.contains("tamper-m"),
        "the tampered text never reaches the client: {line}"
    );
    // Refused for the signature over the changed bytes, not for anything else.
    assert_eq!(out["error"]["data"]["rule"], "response_signature", "{out}");
    let reason = out["error"]["data"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("does not verify"), "{reason}");
    // The session goes on: an untouched result still passes.
    c.send(&call(4, "echo", "fine"));
    let (_, ok) = c.recv();
    assert_signed(&ok, &key);
    let rest = c.finish();
    assert!(rest.is_empty(), "nothing else on stdout: {rest:?}");
    assert!(
        !state.path().join("connect/echo.key").exists(),
        "config pin, no TOFU file"
    );
}

#[test]
fn a_server_whose_key_changed_after_the_pin_is_refused() {
    let first = Serve::start();
    let state = connect_state(None);
    let mut c = Connect::start(&first.url("/mcp/echo"), state.path());
    handshake(&mut c, &first.key());
    assert!(c.finish().is_empty());
    drop(first);

    // Same name, same route, another identity key.
    let second = Serve::start();
    let mut c = Connect::start(&second.url("/mcp/echo"), state.path());
    c.send(INIT);
    let (line, out) = c.recv();
    assert_eq!(out["id"], 1);
    assert_eq!(out["error"]["code"], -32010, "{out}");
    assert!(!line.contains("serverInfo"), "{line}");
    let reason = out["error"]["data"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("pinned"), "{reason}");
    assert!(c.finish().is_empty(), "nothing else on stdout");
}

#[test]
fn results_relayed_from_an_http_upstream_are_signed_too() {
    let record = tempfile::NamedTempFile::new().expect("record file");
    let (_up, up_url) = http_echo(record.path());
    let serve = Serve::with(&format!("url = {up_url:?}"));
    let key = serve.key();
    let state = connect_state(None);
    let mut c = Connect::start(&serve.url("/mcp/echo"), state.path());
    c.send(INIT);
    let (_, init) = c.recv();
    assert_signed(&init, &key);
    assert_eq!(init["result"]["serverInfo"]["name"], "echo-http");
    c.send(INITIALIZED);
    c.send(LIST);
    let (_, list) = c.recv();
    assert_signed(&list, &key);
    c.send(&call(3, "echo", "over http"));
    let (_, out) = c.recv();
    assert_signed(&out, &key);
    assert_eq!(out["result"]["echo"], "tools/call");
    assert!(c.finish().is_empty(), "nothing else on stdout");
    // The upstream never saw the client's signature headers.
    let seen = std::fs::read_to_string(record.path()).expect("record");
    assert!(
        !seen.to_ascii_lowercase().contains("x-mcp-signature"),
        "{seen}"
    );
}

/// A plain streamable-HTTP server with no warden in front: unsigned results, no capabilities
/// document (so no key can be obtained), and a secret in every tool result.
const UNSIGNED_UPSTREAM: &str = r#"
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, status, body=b""):
        self.send_response(status)
        if body: self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def do_POST(self):
        msg = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if "id" not in msg or "method" not in msg: return self.reply(202)
        if msg["method"] == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "plain", "version": "1"}}
        elif msg["method"] == "tools/list":
            result = {"tools": [{"name": "anything", "description": "Shows the config.", "inputSchema": {"type": "object"}}]}
        else:
            result = {"content": [{"type": "text", "text": "config: token=" + SECRET}]}
        self.reply(200, json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode())
    def do_GET(self): self.reply(404)
    def do_DELETE(self): self.reply(200)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

fn unsigned_upstream(dir: &std::path::Path) -> (harness::Proc, String) {
    use std::io::BufRead;
    let script = dir.join("unsigned_upstream.py");
    std::fs::write(&script, UNSIGNED_UPSTREAM).expect("script");
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port: u16 = line.trim().parse().expect("port number");
    (harness::Proc(child), format!("http://127.0.0.1:{port}/mcp"))
}

fn connect_audit(state: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(state.join("audit")).expect("audit dir") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("read");
        out.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("json")),
        );
    }
    out
}

/// No key pinned and none obtainable: in audit mode (the default) unsigned results pass, with
/// one loud warning and an alert record each; either way a result's secrets are redacted as
/// `wrap` would. In enforce mode they are refused with -32010 saying how to pin.
#[test]
fn unsigned_results_from_an_unpinned_server_are_flagged_or_refused_and_always_screened() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_up, url) = unsigned_upstream(tmp.path());

    let state = connect_state(None);
    let mut c = Connect::start(&url, state.path());
    c.send(INIT);
    let (_, init) = c.recv();
    assert_eq!(init["result"]["serverInfo"]["name"], "plain", "{init}");
    c.send(INITIALIZED);
    c.send(&call(3, "anything", "x"));
    let (line, out) = c.recv();
    assert_eq!(out["id"], 3);
    assert!(
        !line.contains("A1b2C3d4E5f6G7h8"),
        "secret reached the client: {line}"
    );
    assert!(line.contains("[REDACTED:github_token]"), "{line}");
    c.send(&call(4, "anything", "y"));
    let _ = c.recv();
    let log = c.log.lock().expect("log").clone();
    assert!(c.finish().is_empty());
    assert_eq!(
        log.matches("WARNING: server").count(),
        1,
        "said loudly, once: {log}"
    );
    let audit = connect_audit(state.path());
    let flagged = audit
        .iter()
        .filter(|r| r["direction"] == "server_to_client" && r["alert"] == true)
        .count();
    assert_eq!(flagged, 3, "each unsigned result audited: {audit:#?}");
    assert!(audit
        .iter()
        .any(|r| r["event"] == "dlp.secret_redacted" && r["decision"] == "redact"));

    let state = connect_state(Some("[signatures]\nmode = \"enforce\"\n"));
    let mut c = Connect::start(&url, state.path());
    c.send(INIT);
    let (_, init) = c.recv();
    assert_eq!(init["error"]["code"], -32010, "{init}");
    let reason = init["error"]["data"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("public_key"), "says how to pin: {reason}");
    // (A call would be refused before it left: with the handshake refused nothing is listed.)
    c.send(
        r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///config"}}"#,
    );
    let (line, out) = c.recv();
    assert_eq!(out["error"]["code"], -32010, "{out}");
    assert!(!line.contains("A1b2C3d4E5f6G7h8"));
    assert!(c.finish().is_empty());
}
