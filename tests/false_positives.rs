//! Ordinary use must never be refused (issue 10): a tool name another server also uses, and a
//! call made before any listing, through the real `wrap` binary in front of the echo server.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{echo_server_bin, start_upstream, Options, Wrapped};

fn shared_state_env(dir: &std::path::Path) -> Vec<(String, String)> {
    vec![(
        "MCP_WARDEN_STATE".to_owned(),
        dir.to_string_lossy().into_owned(),
    )]
}

fn wrap_as(server: &str, state: &std::path::Path) -> Wrapped {
    let opts = Options {
        extra_env: shared_state_env(state),
        ..Options::default()
    };
    start_upstream(opts, server, &[echo_server_bin().into_os_string()])
}

fn handshake_without_listing(w: &mut Wrapped) {
    w.send(&json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}));
    assert_eq!(w.recv()["id"], "init");
    w.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
}

fn call_echo(w: &mut Wrapped, id: &str, text: &str) -> Value {
    w.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"text":text}}}));
    loop {
        let r = w.recv();
        if r["id"] == id {
            return r;
        }
    }
}

#[test]
fn a_tool_name_another_server_also_uses_stays_listed_and_callable() {
    let state = tempfile::tempdir().unwrap();
    let mut first = wrap_as("alpha", state.path());
    first.initialize();
    first.finish();

    // A second, separately proxied server with a tool of the same name (`echo`).
    let mut second = wrap_as("beta", state.path());
    handshake_without_listing(&mut second);
    second.send(&json!({"jsonrpc":"2.0","id":"list","method":"tools/list"}));
    let listed = second.recv();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["echo"], "{listed}");
    let r = call_echo(&mut second, "c1", "hello");
    assert_eq!(r["result"]["content"][0]["text"], "hello", "{r}");
    let audit = second.audit();
    let collision = audit
        .iter()
        .find(|r| r["event"] == "capability.name_collision")
        .expect("the shared name is reported");
    assert_eq!(collision["alert"], true);
    assert!(
        !audit.iter().any(|r| r["event"] == "capability.shadowing"),
        "a plain name collision is not shadowing"
    );
}

#[test]
fn a_call_before_any_listing_is_judged_against_a_listing_the_proxy_fetched() {
    let mut w = Wrapped::start(Options::default());
    handshake_without_listing(&mut w);
    let r = call_echo(&mut w, "c1", "no listing first");
    assert_eq!(r["result"]["content"][0]["text"], "no listing first", "{r}");
    // The server got the proxy's own listing first; its answer never reached the client.
    let upstream: Vec<Value> = w
        .upstream()
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let methods: Vec<&str> = upstream
        .iter()
        .filter_map(|m| m["method"].as_str())
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/call"
        ]
    );
    assert!(upstream[2]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("mcp-warden/")));
    let raw = std::fs::read(w.dir.path().join("upstream.log")).unwrap();
    assert!(
        !raw.windows(2).any(|w| w == b"\n\n"),
        "one line per message, no blank line"
    );
    assert!(w.recv_raw(Duration::from_millis(300)).is_none());
    let audit = w.audit();
    let own = audit
        .iter()
        .find(|r| r["method"] == "tools/list")
        .expect("the proxy's own listing is audited");
    assert_eq!(own["direction"], "proxy", "{own}");
    assert_eq!(
        own["event"], "capability.first_pin",
        "pinned on first use: {own}"
    );
    // A tool the server does not have is still unknown, and the prefetch happens once.
    w.send(&json!({"jsonrpc":"2.0","id":"c2","method":"tools/call","params":{"name":"exec_shell","arguments":{}}}));
    let r = w.recv();
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let lists = w
        .upstream()
        .iter()
        .filter(|l| String::from_utf8_lossy(l).contains("tools/list"))
        .count();
    assert_eq!(lists, 1);
}

#[test]
fn a_modern_call_as_the_first_message_is_answered() {
    let mut w = Wrapped::start(Options::default());
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    w.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"modern"},"_meta": meta}}));
    let r = w.recv();
    assert_eq!(r["id"], 1);
    assert_eq!(r["result"]["content"][0]["text"], "modern", "{r}");
    let first = serde_json::from_slice::<Value>(&w.upstream()[0]).unwrap();
    assert_eq!(first["method"], "tools/list");
    assert_eq!(
        first["params"]["_meta"], meta,
        "the listing carries the call's era"
    );
}
