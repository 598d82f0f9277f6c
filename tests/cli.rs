//! The day-one and day-two command line (issue 19), through the real binary: exit codes, what
//! each command prints, and the recovery paths an operator is told about.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use support::{echo_server_bin, start_upstream, warden_bin, Options, Wrapped};

fn cli(state: &Path, args: &[&str]) -> Output {
    Command::new(warden_bin())
        .args(args)
        .env("MCP_WARDEN_STATE", state)
        .env_remove("MCP_WARDEN_LOG")
        .output()
        .expect("run mcp-warden")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn trust_of_an_unknown_server_fails_and_names_the_known_ones() {
    let state = tempfile::tempdir().unwrap();
    let out = cli(state.path(), &["trust", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("no trust history for \"nosuch\""),
        "{out:?}"
    );
}

#[test]
fn trust_reset_starts_a_server_over_and_the_report_says_how_to_recover() {
    let w = {
        let mut w = Wrapped::start(Options::default());
        w.initialize();
        w.finish();
        w
    };
    let state = w.dir.path().join("state");
    for _ in 0..6 {
        assert!(cli(&state, &["feedback", "echo", "-1"]).status.success());
    }
    let out = cli(&state, &["trust", "echo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mcp-warden trust echo --reset"), "{text}");
    let out = cli(&state, &["trust", "echo", "--reset"]);
    assert!(out.status.success(), "{out:?}");
    // Nothing is recorded any more: the server is unknown until it is seen again.
    let out = cli(&state, &["trust", "echo", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let kept = std::fs::read_dir(state.join("trust"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains(".reset-"));
    assert!(kept, "the old history is kept aside");
}

#[test]
fn check_config_reports_every_problem_and_the_policy_in_force() {
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[admin]\nlisten = \"0.0.0.0:9464\"\n[policy]\ndir = \"/nonexistent/policies\"\n\
         [inference]\nbackend = \"https://vllm.example:8000\"\n",
    )
    .unwrap();
    let out = cli(
        state.path(),
        &["check-config", "--config", cfg.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("admin.listen"), "{err}");
    assert!(err.contains("policy.dir /nonexistent/policies"), "{err}");
    assert!(err.contains("inference.backend"), "{err}");
    assert!(!err.contains("config ok"), "{err}");

    let out = cli(state.path(), &["check-config"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("built-in filesystem.toml"), "{err}");
}

#[test]
fn one_policy_file_does_not_disable_the_built_in_packs() {
    // The everything pack hides get-env; a local file for another server must not undo that.
    let state = tempfile::tempdir().unwrap();
    let policies = state.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("local.toml"),
        "[server]\nmatch = [\"other\"]\ndefault_risk = \"low\"\n",
    )
    .unwrap();
    let opts = Options {
        script: Some(json!({"get-env": []})),
        extra_env: vec![(
            "MCP_WARDEN_STATE".into(),
            state.path().to_string_lossy().into_owned(),
        )],
        ..Options::default()
    };
    let mut w = start_upstream(opts, "everything", &[echo_server_bin().into_os_string()]);
    w.send(&json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}));
    w.recv();
    w.send(&json!({"jsonrpc":"2.0","id":"list","method":"tools/list"}));
    let listed = w.recv();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["echo"],
        "get-env stays hidden by the built-in pack: {listed}"
    );
    let sources = cli(state.path(), &["check-config"]);
    let err = stderr(&sources);
    assert!(err.contains("built-in everything.toml"), "{err}");
    assert!(err.contains("policies/local.toml"), "{err}");
}

/// Issue 19 item 13: empty files of ended processes are removed at start-up, and `audit verify`
/// takes the whole directory.
#[test]
fn audit_dir_housekeeping_and_verify_of_a_directory() {
    use std::io::{BufRead, BufReader, Write};
    let state = tempfile::tempdir().unwrap();
    let audit = state.path().join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    // A process that ended before its first record (the pid cannot be running).
    let empty = audit.join("20261201T000000Z-echo-99999999.jsonl");
    std::fs::write(&empty, "").unwrap();
    for _ in 0..2 {
        let mut child = Command::new(warden_bin())
            .args(["wrap", "--server", "echo", "--"])
            .arg(echo_server_bin())
            .env("MCP_WARDEN_STATE", state.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", json!({"jsonrpc":"2.0","id":1,"method":"ping"})).unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("result"), "{line}");
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }
    assert!(
        !empty.exists(),
        "the empty file of an ended process is removed"
    );
    let out = cli(state.path(), &["audit", "verify", audit.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("2 file(s), 0 broken"), "{text}");
    // One edited line in one file: the directory check fails and names it.
    let mut files: Vec<_> = std::fs::read_dir(&audit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let body = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(&files[0], body.replacen("\"ping\"", "\"pong\"", 1)).unwrap();
    let out = cli(state.path(), &["audit", "verify", audit.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("broken at line"), "{text}");
    assert!(text.contains("2 file(s), 1 broken"), "{text}");
}

/// Issue 19 item 12: `approvals --json` for scripts.
#[test]
fn approvals_lists_as_json() {
    let state = tempfile::tempdir().unwrap();
    let queue = mcp_warden::approval::ApprovalQueue::new(
        state.path().join("approvals"),
        std::time::Duration::from_secs(20),
    );
    let t = queue
        .submit(
            "fs",
            "write_file",
            "high",
            "fs.toml:tool[write_file]",
            None,
            vec!["path: /tmp/x".into()],
        )
        .unwrap();
    let out = cli(state.path(), &["approvals", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(list[0]["id"], t.id.as_str(), "{list}");
    assert_eq!(list[0]["tool"], "write_file");
}
