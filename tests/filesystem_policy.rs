//! The real `@modelcontextprotocol/server-filesystem` behind `mcp-warden wrap`, with the policy
//! packs built into the binary (no policy dir configured): the shipped filesystem pack applies by
//! the server's command line (`*server-filesystem*`) and confines path arguments to the server's
//! own root arguments (`$SERVER_ARGS`). A read inside the root passes and returns the file; reads
//! outside it — `..` traversal and a sibling directory sharing the root's prefix
//! (CVE-2025-53110) — are refused by the proxy and never reach the server.
//!
//! Needs the pinned peers: `scripts/setup-peers.sh`.

mod support;

use std::ffi::OsString;
use std::path::PathBuf;

use serde_json::{json, Value};
use support::{Options, Wrapped};

fn server_js() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    assert!(
        p.exists(),
        "server-filesystem is not installed: run scripts/setup-peers.sh"
    );
    p
}

fn reply(w: &Wrapped, id: &str) -> Value {
    loop {
        let r = w.recv();
        if r["id"] == id && r.get("method").is_none() {
            return r;
        }
    }
}

fn call(w: &mut Wrapped, id: &str, tool: &str, path: &str) -> Value {
    w.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{"path":path}}}));
    reply(w, id)
}

#[test]
fn shipped_filesystem_pack_confines_reads_to_the_server_root() {
    let base = tempfile::tempdir().expect("tempdir");
    let base_path = base.path().canonicalize().expect("canonical tempdir");
    let root = base_path.join("root");
    let evil = base_path.join("root-evil");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(root.join("inside.txt"), "hello from inside the root\n").unwrap();
    std::fs::write(base_path.join("secret.txt"), "TOP-SECRET-OUTSIDE-ROOT\n").unwrap();
    std::fs::write(evil.join("x"), "TOP-SECRET-SIBLING-DIR\n").unwrap();

    let argv: Vec<OsString> = vec![
        "node".into(),
        server_js().into_os_string(),
        root.clone().into_os_string(),
    ];
    // No policy dir: the state dir's `policies/` does not exist, so the embedded packs apply.
    let mut w = support::start_upstream(Options::default(), "fs-under-test", &argv);
    w.send(&json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}));
    let init = reply(&w, "init");
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    w.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    w.send(&json!({"jsonrpc":"2.0","id":"list","method":"tools/list"}));
    let list = reply(&w, "list");
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list: {list}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let tool = ["read_text_file", "read_file"]
        .into_iter()
        .find(|t| names.contains(t))
        .unwrap_or_else(|| panic!("a read tool in {names:?}"));

    // Inside the root: allowed, the server's content comes back.
    let inside = root.join("inside.txt");
    let ok = call(&mut w, "in", tool, inside.to_str().unwrap());
    let text = ok["result"]["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("hello from inside the root"),
        "read inside the root: {ok}"
    );

    // Outside: `..` out of the root, a sibling that shares the root's string prefix, and a
    // symlink inside the root that leads out of it (resolved as the server would open it).
    let traversal = format!("{}/../secret.txt", root.display());
    let sibling = evil.join("x");
    std::os::unix::fs::symlink(&base_path, root.join("escape")).unwrap();
    let via_link = root.join("escape/secret.txt");
    let refused = [
        ("dotdot", traversal.as_str(), "policy.path_outside_root"),
        (
            "sibling",
            sibling.to_str().unwrap(),
            "policy.path_outside_root",
        ),
        (
            "symlink",
            via_link.to_str().unwrap(),
            "policy.path_outside_root",
        ),
    ];
    for (id, path, event) in refused {
        let r = call(&mut w, id, tool, path);
        assert_eq!(r["error"]["code"], -32013, "{id} ({path}): {r}");
        let rule = r["error"]["data"]["rule"].as_str().unwrap_or("");
        assert!(
            rule.contains("path_under"),
            "{id}: refused by the pack's path rule: {r}"
        );
        let body = r.to_string();
        assert!(
            !body.contains("TOP-SECRET"),
            "{id}: no file content leaks: {body}"
        );
        // The proxy's own refusal, not the server's ("Access denied - path outside allowed
        // directories"): the server never saw the request.
        assert!(
            !body.contains("Access denied") && !body.contains("allowed directories"),
            "{id}: the server's own error text means it received the call: {body}"
        );
        let records = w.audit();
        let denied = records
            .iter()
            .find(|a| a["id"] == id && a["direction"] == "client_to_server")
            .unwrap_or_else(|| panic!("{id}: audit record"));
        assert_eq!(denied["decision"], "deny", "{id}: {denied}");
        assert_eq!(denied["event"], event, "{id}: {denied}");
        assert_eq!(denied["alert"], true, "{id}: {denied}");
        assert!(
            !records
                .iter()
                .any(|a| a["id"] == id && a["direction"] == "server_to_client"),
            "{id}: the server answered, so it received the call"
        );
    }
    // A resource read names a file as surely as a tool argument: held to the same roots.
    for (id, uri) in [
        ("res-passwd", "file:///etc/passwd".to_owned()),
        ("res-link", format!("file://{}", via_link.to_str().unwrap())),
    ] {
        w.send(&json!({"jsonrpc":"2.0","id":id,"method":"resources/read","params":{"uri":uri}}));
        let r = reply(&w, id);
        assert_eq!(r["error"]["code"], -32013, "{id}: {r}");
        assert_eq!(
            r["error"]["data"]["rule"], "resources/read.uri.path_under",
            "{id}: {r}"
        );
    }
    // The session is still fine afterwards.
    let again = call(&mut w, "again", tool, inside.to_str().unwrap());
    assert!(again["result"].is_object(), "{again}");
    let records = w.audit();
    assert!(
        records
            .iter()
            .any(|a| a["id"] == "res-passwd" && a["event"] == "policy.path_outside_root"),
        "resources/read refusal audited"
    );
    assert!(
        !records
            .iter()
            .any(|a| a["id"] == "res-passwd" && a["direction"] == "server_to_client"),
        "the server never saw the resource read"
    );
}
