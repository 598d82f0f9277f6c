//! `install` rewrites a Claude Desktop config; the rewritten command line, started exactly as a
//! desktop client would start it, speaks MCP through the proxy; `uninstall` restores the file
//! byte for byte.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn warden(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(support::warden_bin())
        .args(args)
        .env("HOME", home)
        .env("MCP_WARDEN_STATE", home.join("state"))
        .env_remove("APPDATA")
        .env_remove("XDG_CONFIG_HOME")
        .current_dir(home)
        .output()
        .expect("run mcp-warden")
}

#[test]
fn install_run_uninstall_claude_desktop() {
    let home = tempfile::tempdir().expect("home");
    let cfg_dir = home.path().join(".config/Claude");
    std::fs::create_dir_all(&cfg_dir).expect("mkdir");
    let cfg = cfg_dir.join("claude_desktop_config.json");
    let echo = support::echo_server_bin();
    let original = format!(
        "{{\n  \"globalShortcut\": \"Ctrl+Space\",\n  \"mcpServers\": {{\n    \"echo\": {{\n      \"command\": {},\n      \"args\": [],\n      \"env\": {{ \"ECHO_RECORD\": {} }}\n    }}\n  }}\n}}\n",
        serde_json::to_string(&echo.to_string_lossy()).expect("json"),
        serde_json::to_string(&home.path().join("upstream.log").to_string_lossy()).expect("json"),
    );
    std::fs::write(&cfg, &original).expect("write config");

    let out = warden(home.path(), &["install", "--client", "claude-desktop"]);
    assert!(
        out.status.success(),
        "install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed: Value = serde_json::from_slice(&std::fs::read(&cfg).expect("read"))
        .expect("installed config is JSON");
    assert_eq!(
        installed["globalShortcut"], "Ctrl+Space",
        "unrelated keys kept"
    );
    let entry = &installed["mcpServers"]["echo"];
    let command = entry["command"].as_str().expect("command");
    assert!(
        Path::new(command).is_absolute(),
        "absolute binary path written"
    );
    let args: Vec<String> = entry["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("str").to_owned())
        .collect();
    assert_eq!(&args[..4], ["wrap", "--server", "echo", "--"]);

    // Start it the way Claude Desktop does: command + args + the entry's env.
    let mut child = Command::new(command)
        .args(&args)
        .envs(
            entry["env"]
                .as_object()
                .expect("env")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())),
        )
        .env("MCP_WARDEN_STATE", home.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rewritten command");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut ask = |msg: Value| -> Value {
        writeln!(stdin, "{msg}").expect("write");
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        serde_json::from_str(&line).expect("reply is JSON")
    };
    let init = ask(
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"claude-ai","version":"0.1"}}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "echo");
    // A client lists tools before calling them; the first listing is pinned (trust on first use).
    let list = ask(json!({"jsonrpc":"2.0","id":"l","method":"tools/list"}));
    assert_eq!(list["result"]["tools"][0]["name"], "echo");
    let call = ask(
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"through the installed proxy"}}}),
    );
    assert_eq!(
        call["result"]["content"][0]["text"],
        "through the installed proxy"
    );
    drop(stdin);
    assert!(child.wait().expect("wait").success());
    assert!(
        home.path().join("upstream.log").exists(),
        "the real server ran behind the proxy"
    );
    assert!(
        home.path()
            .join("state/audit")
            .read_dir()
            .expect("audit dir")
            .next()
            .is_some(),
        "audited"
    );

    // detect sees it as wrapped; install again changes nothing.
    let detect = warden(home.path(), &["detect", "--json"]);
    let found: Value = serde_json::from_slice(&detect.stdout).expect("detect json");
    assert_eq!(found[0]["wrapped"], true);
    assert_eq!(found[0]["server"], "echo");
    // Issue 19: the status comes from the state dir the session just wrote.
    assert_eq!(found[0]["pins"], "pinned", "{found}");
    assert!(found[0]["trust"].as_f64().is_some(), "{found}");
    // A server or client name that does not exist is an error that names what does.
    let out = warden(home.path(), &["install", "--server", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no server \"nosuch\"") && err.contains("echo"),
        "{err}"
    );
    let out = warden(home.path(), &["install", "--client", "clod"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("claude-desktop, claude-code"), "{err}");
    let before = std::fs::read(&cfg).expect("read");
    assert!(warden(home.path(), &["install"]).status.success());
    assert_eq!(
        std::fs::read(&cfg).expect("read"),
        before,
        "install is idempotent"
    );

    let out = warden(home.path(), &["uninstall"]);
    assert!(
        out.status.success(),
        "uninstall failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).expect("read"),
        original,
        "uninstall restores the exact bytes"
    );
}
