//! Real third-party peers through `mcp-warden wrap`: the official TypeScript and Python SDK
//! clients drive server-everything, server-filesystem and server-memory (tools, progress,
//! cancellation, resources, prompts, sampling, elicitation, roots, ping), once directly and once
//! through the proxy, and the normalised transcripts must be identical. The inspector CLI lists
//! and calls tools through `wrap` too.
//!
//! Needs the pinned peers: `scripts/setup-peers.sh` (the README's test command runs it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn peers_installed() -> bool {
    let r = repo();
    r.join("tests/peers/node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
        && r.join(".venv-peers/bin/python").exists()
}

fn require_peers() {
    assert!(peers_installed(), "real MCP peers are not installed: run scripts/setup-peers.sh (the README's test command does)");
}

fn server_cmd(scenario: &str, root: &Path) -> Vec<String> {
    let nm = repo().join("tests/peers/node_modules/@modelcontextprotocol");
    let s = |p: &str| nm.join(p).to_string_lossy().into_owned();
    match scenario {
        "everything" => vec![
            "node".into(),
            s("server-everything/dist/index.js"),
            "stdio".into(),
        ],
        "filesystem" => vec![
            "node".into(),
            s("server-filesystem/dist/index.js"),
            root.to_string_lossy().into_owned(),
        ],
        "memory" => vec!["node".into(), s("server-memory/dist/index.js")],
        other => panic!("unknown scenario {other}"),
    }
}

fn client_cmd(client: &str) -> Vec<String> {
    let r = repo();
    match client {
        "ts" => vec![
            "node".into(),
            r.join("tests/peers/ts_client.mjs")
                .to_string_lossy()
                .into_owned(),
        ],
        "py" => vec![
            r.join(".venv-peers/bin/python")
                .to_string_lossy()
                .into_owned(),
            r.join("tests/peers/py_client.py")
                .to_string_lossy()
                .into_owned(),
        ],
        other => panic!("unknown client {other}"),
    }
}

/// Run one client scenario against `server` (already prefixed with the proxy when proxied).
fn transcript(client: &str, scenario: &str, server: Vec<String>, state: &Path) -> String {
    let mut argv = client_cmd(client);
    argv.push(scenario.into());
    argv.push("--".into());
    argv.extend(server);
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env("MCP_WARDEN_STATE", state)
        // Transparency is the question here, not policy: a permissive pack, so that the shipped
        // packs' (deliberate) refusals do not count as differences. Pins, signatures (audit),
        // trust and the audit trail are all active.
        .env(
            "MCP_WARDEN_POLICY_DIR",
            support::fixture("policies/allow-all"),
        )
        // Only the permissive pack: the built-in ones stay out of what this compares.
        .env("MCP_WARDEN_POLICY_BUILTIN", "false")
        .output()
        .expect("run peer client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{client} {scenario} failed ({}):\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn direct_vs_wrapped(client: &str, scenario: &str) {
    let state = tempfile::tempdir().expect("state");
    let root_a = tempfile::tempdir().expect("root");
    let root_b = tempfile::tempdir().expect("root");
    let direct = transcript(
        client,
        scenario,
        server_cmd(scenario, root_a.path()),
        state.path(),
    );
    let mut wrapped = vec![
        support::warden_bin().to_string_lossy().into_owned(),
        "wrap".into(),
        "--".into(),
    ];
    wrapped.extend(server_cmd(scenario, root_b.path()));
    let proxied = transcript(client, scenario, wrapped, state.path());
    assert!(
        !direct.contains("\"failed\": true") && !direct.contains("\"failed\":true"),
        "{direct}"
    );
    let (direct, proxied) = set_aside_unknown_tool_step(&direct, &proxied);
    if direct != proxied {
        let d: Vec<&str> = direct.lines().collect();
        let p: Vec<&str> = proxied.lines().collect();
        let first = d
            .iter()
            .zip(&p)
            .position(|(a, b)| a != b)
            .unwrap_or(d.len().min(p.len()));
        panic!(
            "{client}/{scenario}: proxied transcript differs from direct at line {first}:\n direct: {:?}\nproxied: {:?}",
            d.get(first),
            p.get(first)
        );
    }
    // The proxy kept an audit trail of the session, with an intact chain.
    let audit_dir = state.path().join("audit");
    let files: Vec<PathBuf> = std::fs::read_dir(&audit_dir)
        .expect("audit dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one audit file per wrap process");
    let bytes = std::fs::read(&files[0]).expect("audit file");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.lines().count() > 10, "audit has too few records");
    assert!(text.contains("\"method\":\"tools/call\""));
    let verify = Command::new(support::warden_bin())
        .args(["audit", "verify"])
        .arg(&files[0])
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// The one documented difference: a call to a tool the server never listed is answered by the
/// proxy itself with -32602 "Unknown tool: NAME" (it never reaches the server, SPEC §5/§6),
/// whatever shape the server's own answer would have had. Check that step, then compare the
/// rest of the transcripts byte for byte.
fn set_aside_unknown_tool_step(direct: &str, proxied: &str) -> (String, String) {
    let mut d: serde_json::Value = serde_json::from_str(direct).expect("direct transcript is JSON");
    let mut p: serde_json::Value =
        serde_json::from_str(proxied).expect("proxied transcript is JSON");
    let take = |t: &mut serde_json::Value| -> Option<serde_json::Value> {
        let steps = t.get_mut("steps")?.as_array_mut()?;
        let i = steps
            .iter()
            .position(|s| s["request"]["name"] == "no-such-tool")?;
        Some(steps.remove(i))
    };
    match (take(&mut d), take(&mut p)) {
        (Some(ds), Some(ps)) => {
            assert!(
                ds.to_string().contains("no-such-tool"),
                "direct answer names the tool: {ds}"
            );
            assert_eq!(ps["result"]["code"], -32602, "proxied unknown tool: {ps}");
            let msg = ps["result"]["message"].as_str().unwrap_or("");
            assert!(
                msg.contains("Unknown tool: no-such-tool"),
                "proxied unknown tool message: {msg}"
            );
        }
        (None, None) => {}
        other => panic!("the unknown-tool step is in only one transcript: {other:?}"),
    }
    (
        serde_json::to_string_pretty(&d).expect("json"),
        serde_json::to_string_pretty(&p).expect("json"),
    )
}

#[test]
fn typescript_sdk_everything() {
    require_peers();
    direct_vs_wrapped("ts", "everything");
}

#[test]
fn typescript_sdk_filesystem_and_memory() {
    require_peers();
    direct_vs_wrapped("ts", "filesystem");
    direct_vs_wrapped("ts", "memory");
}

#[test]
fn python_sdk_everything() {
    require_peers();
    direct_vs_wrapped("py", "everything");
}

#[test]
fn python_sdk_filesystem_and_memory() {
    require_peers();
    direct_vs_wrapped("py", "filesystem");
    direct_vs_wrapped("py", "memory");
}

#[test]
fn inspector_cli_lists_and_calls_through_wrap() {
    require_peers();
    let state = tempfile::tempdir().expect("state");
    let script = repo().join("tests/peers/inspector_cli.sh");
    let run = |prefix: &[String]| {
        let mut argv: Vec<String> = prefix.to_vec();
        argv.extend(server_cmd("everything", Path::new("/")));
        let out = Command::new("bash")
            .arg(&script)
            .args(&argv)
            .env("MCP_WARDEN_STATE", state.path())
            .env(
                "MCP_WARDEN_POLICY_DIR",
                support::fixture("policies/allow-all"),
            )
            // Only the permissive pack: the built-in ones stay out of what this compares.
            .env("MCP_WARDEN_POLICY_BUILTIN", "false")
            .output()
            .expect("inspector");
        assert!(
            out.status.success(),
            "inspector-cli failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let direct = run(&[]);
    let proxied = run(&[
        support::warden_bin().to_string_lossy().into_owned(),
        "wrap".into(),
        "--".into(),
    ]);
    assert!(
        proxied.contains("\"echo\""),
        "tools/list through wrap lacks echo: {proxied}"
    );
    assert!(
        proxied.contains("hello from inspector-cli"),
        "echo result missing: {proxied}"
    );
    assert_eq!(direct, proxied);
}
