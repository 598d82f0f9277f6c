//! `serve`'s 2024-11-05 HTTP+SSE transport and upstream credentials from config.
//!
//! - The official TypeScript SDK's `SSEClientTransport` drives the stdio echo server through
//!   `ROUTE/sse` + `ROUTE/messages`: initialize, tools/list, tools/call.
//! - The endpoint event names our session; an unknown `sessionId` → 404.
//! - `[[servers]] headers` reach an `url` upstream; the client's `Authorization` never does.

mod http;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use http::{echo_config, request, Serve, INIT, JSON_ONLY};

#[test]
fn sdk_sse_client_through_serve_to_a_stdio_server() {
    let serve = Serve::start(&echo_config(""), &[]);
    let out = Command::new("node")
        .arg(http::repo().join("tests/http/legacy_sse_client.mjs"))
        .arg(serve.url("/mcp/echo/sse"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n--- stderr ---\n{}\n--- serve ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        serve.stderr.lock().unwrap()
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0]["server"].is_object(), "{stdout}");
    assert_eq!(lines[1]["tools"][0]["name"], "echo", "{stdout}");
    assert!(stdout.contains("hi legacy"), "{stdout}");
    let events = http::audit_events(&serve);
    assert!(!events.is_empty());
}

#[test]
fn endpoint_event_names_the_session_and_unknown_ids_are_404() {
    let serve = Serve::start(&echo_config(""), &[]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /mcp/sse HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        serve.addr
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut endpoint = None;
    let mut line = String::new();
    while endpoint.is_none() {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(d) = line.trim_end().strip_prefix("data: ") {
            endpoint = Some(d.to_owned());
        }
    }
    let endpoint = endpoint.unwrap();
    let sid = endpoint
        .strip_prefix("/mcp/messages?sessionId=")
        .unwrap_or_else(|| panic!("{endpoint}"));
    assert_eq!(sid.len(), 32);
    let ok = request(serve.addr, "POST", &endpoint, &[], INIT.as_bytes());
    assert_eq!(ok.status, 202);
    // The answer comes on the stream.
    let mut seen = String::new();
    while !seen.contains("\"result\"") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.contains("event: message"), "{seen}");
    let bad = request(
        serve.addr,
        "POST",
        "/mcp/messages?sessionId=00000000000000000000000000000000",
        &[],
        INIT.as_bytes(),
    );
    assert_eq!(bad.status, 404);
    drop(r);
    // Closing the stream ends the session (as soon as the proxy sees the close: polled).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while request(serve.addr, "POST", &endpoint, &[], INIT.as_bytes()).status != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived its stream"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn configured_upstream_headers_replace_the_clients_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("headers.jsonl");
    let (_up, url) = http::echo_http(&record);
    let serve = Serve::start(
        &format!(
            "[[servers]]\nname = \"echo\"\nurl = {url:?}\n\
             headers = {{ \"Authorization\" = \"Bearer upstream-token\", \"X-Tenant\" = \"t1\" }}\n"
        ),
        &[],
    );
    let init = request(
        serve.addr,
        "POST",
        "/mcp",
        &[JSON_ONLY, ("Authorization", "Bearer client-secret-token")],
        INIT.as_bytes(),
    );
    assert_eq!(init.status, 200, "{}", String::from_utf8_lossy(&init.body));
    let seen: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(
            r["headers"]["authorization"], "Bearer upstream-token",
            "{r}"
        );
        assert_eq!(r["headers"]["x-tenant"], "t1", "{r}");
        assert!(!r.to_string().contains("client-secret-token"), "{r}");
    }
}

#[test]
fn headers_on_a_command_server_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("proxy.toml");
    std::fs::write(
        &cfg,
        "[[servers]]\nname = \"a\"\ncommand = [\"x\"]\nheaders = { \"Authorization\" = \"Bearer t\" }\n",
    )
    .unwrap();
    let out = Command::new(support::warden_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("servers[0].headers"), "{err}");
}
