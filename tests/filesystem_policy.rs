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

// ------------------------------------------------------------------ approval through the client

/// One `write_file` by the official Python SDK client (`tests/peers/py_approval.py`) through
/// `wrap` in front of the real filesystem server, under a policy that asks for approval.
struct ApprovalRun {
    base: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

impl ApprovalRun {
    fn new() -> ApprovalRun {
        let base = tempfile::tempdir().expect("tempdir");
        let b = base.path().canonicalize().expect("canonical");
        let root = b.join("root");
        let cfg = b.join("cfg");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(cfg.join("policies")).unwrap();
        std::fs::write(
            cfg.join("policies/fs.toml"),
            "[server]\nmatch = [\"fs-approval\"]\n\n[[tool]]\nname = \"write_file\"\nrisk = \"high\"\naction = \"approve\"\n",
        )
        .unwrap();
        std::fs::write(
            cfg.join("proxy.toml"),
            format!(
                "[policy]\ndir = {:?}\napproval_timeout_secs = 20\nrisk_thresholds = {{ low = 0.0, medium = 0.0, high = 0.0 }}\n",
                cfg.join("policies").to_string_lossy()
            ),
        )
        .unwrap();
        ApprovalRun {
            state: b.join("state"),
            root,
            base,
        }
    }

    /// Start the `client` ("py" or "ts") in `mode`; it prints its one JSON line when the call
    /// is answered.
    fn spawn(&self, client: &str, mode: &str, file: &str) -> std::process::Child {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let (program, script) = match client {
            "py" => (
                repo.join(".venv-peers/bin/python"),
                "tests/peers/py_approval.py",
            ),
            _ => (PathBuf::from("node"), "tests/peers/ts_approval.mjs"),
        };
        assert!(
            repo.join(".venv-peers/bin/python").exists()
                && repo
                    .join("tests/peers/node_modules/@modelcontextprotocol/sdk")
                    .exists(),
            "the SDK clients are not installed: run scripts/setup-peers.sh"
        );
        let b = self.base.path();
        std::process::Command::new(program)
            .arg(repo.join(script))
            .arg(mode)
            .arg(self.root.join(file))
            .arg(format!("written after {mode}"))
            .arg("--")
            .arg(support::warden_bin())
            .args(["wrap", "--server", "fs-approval", "--config"])
            .arg(b.join("cfg/proxy.toml"))
            .arg("--audit-file")
            .arg(b.join("audit.jsonl"))
            .arg("--")
            .arg("node")
            .arg(server_js())
            .arg(&self.root)
            .env("MCP_WARDEN_STATE", &self.state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(b.join(format!("{mode}.stderr"))).unwrap())
            .spawn()
            .expect("run the Python SDK client")
    }

    fn outcome(&self, child: std::process::Child, mode: &str) -> Value {
        let out = child.wait_with_output().expect("client output");
        let stderr = std::fs::read_to_string(self.base.path().join(format!("{mode}.stderr")))
            .unwrap_or_default();
        assert!(out.status.success(), "{mode}: client failed: {stderr}");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{mode}: not JSON ({e}): {:?}\n{stderr}", out.stdout))
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.base.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Issue 11 proof: the official Python SDK client with an elicitation callback is asked by the
/// proxy itself; accepted → the real server writes the file; declined / cancelled → -32014 and
/// nothing is written. A client without elicitation waits in the queue until `mcp-warden
/// approve` (signed by the identity key) decides; the audit names who decided.
#[test]
fn python_sdk_client_approves_write_file_where_the_human_is() {
    approval_where_the_human_is("py");
}

/// The same with the official TypeScript SDK client.
#[test]
fn typescript_sdk_client_approves_write_file_where_the_human_is() {
    approval_where_the_human_is("ts");
}

fn approval_where_the_human_is(client: &str) {
    let run = ApprovalRun::new();
    let accepted = run.outcome(run.spawn(client, "accept", "accepted.txt"), "accept");
    assert_eq!(
        accepted["asked"].as_array().map(Vec::len),
        Some(1),
        "{accepted}"
    );
    let asked = accepted["asked"][0].as_str().unwrap_or_default();
    assert!(
        asked.contains("write_file") && asked.contains("accepted.txt"),
        "{asked}"
    );
    assert!(accepted["error"].is_null(), "{accepted}");
    assert_eq!(
        std::fs::read_to_string(run.root.join("accepted.txt")).unwrap_or_default(),
        "written after accept"
    );

    for mode in ["decline", "cancel"] {
        let file = format!("{mode}.txt");
        let r = run.outcome(run.spawn(client, mode, &file), mode);
        assert_eq!(r["error"]["code"], -32014, "{mode}: {r}");
        let word = if mode == "decline" {
            "declined"
        } else {
            "cancelled"
        };
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(word),
            "{mode}: {r}"
        );
        assert!(
            !run.root.join(&file).exists(),
            "{mode}: the file was written"
        );
    }

    // No elicitation declared: the signed queue, decided by `mcp-warden approve`.
    let child = run.spawn(client, "none", "queued.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let ticket = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no pending approval appeared"
        );
        let out = std::process::Command::new(support::warden_bin())
            .arg("approvals")
            .env("MCP_WARDEN_STATE", &run.state)
            .output()
            .expect("approvals");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(l) = text.lines().find(|l| l.contains("write_file")) {
            assert!(
                text.contains("queued.txt"),
                "the safe view shows the path: {text}"
            );
            break l.split_whitespace().next().expect("id").to_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let approve = std::process::Command::new(support::warden_bin())
        .args(["approve", &ticket])
        .env("MCP_WARDEN_STATE", &run.state)
        .output()
        .expect("approve");
    assert!(approve.status.success(), "{approve:?}");
    let queued = run.outcome(child, "none");
    assert!(
        queued["error"].is_null() && queued["asked"] == json!([]),
        "{queued}"
    );
    assert!(
        run.root.join("queued.txt").exists(),
        "approved through the queue, written"
    );

    let granted: Vec<Value> = run
        .audit()
        .into_iter()
        .filter(|r| r["event"] == "approval.granted")
        .collect();
    let by: Vec<&str> = granted
        .iter()
        .filter_map(|r| r["detail"]["approval"]["decided_by"].as_str())
        .collect();
    assert_eq!(by.len(), 2, "{granted:#?}");
    assert_eq!(by[0], "client elicitation");
    assert!(by[1].starts_with("identity (kid "), "{by:?}");
    assert!(
        granted[1]["kid"].is_string(),
        "the deciding key is recorded: {:#?}",
        granted[1]
    );
}
