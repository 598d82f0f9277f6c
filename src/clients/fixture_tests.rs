//! Data-driven round trip over every file in `fixtures/clients/`.
//!
//! A fixture named `<slot>__<what>.json` is copied to where the `<slot>`
//! client keeps its config inside a temp home/project, and
//! `fixtures/clients/expected.json` says what detect must find there.

use std::fs;
use std::path::{Path, PathBuf};

use super::jsonc::{parse, Dialect};
use super::servers::{classify, entries, Kind};
use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/clients");
const BIN: &str = "/opt/mcp-warden/bin/mcp-warden";

struct Placed {
    _tmp: tempfile::TempDir,
    env: Env,
    path: PathBuf,
    original: Vec<u8>,
    loc: Location,
}

/// Puts fixture `name` where its slot's client looks for it.
fn place(name: &str) -> Placed {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let cwd = tmp.path().join("proj");
    let slot = name.split("__").next().expect("slot");
    let (os, rel): (Os, PathBuf) = match slot {
        "claude-desktop-macos" => (
            Os::MacOs,
            home.join("Library/Application Support/Claude/claude_desktop_config.json"),
        ),
        "claude-desktop-linux" => (
            Os::Linux,
            home.join(".config/Claude/claude_desktop_config.json"),
        ),
        "claude-desktop-windows" => (
            Os::Windows,
            tmp.path().join("appdata/Claude/claude_desktop_config.json"),
        ),
        "claude-code-user" => (Os::Linux, home.join(".claude.json")),
        "claude-code-project" => (Os::Linux, cwd.join(".mcp.json")),
        "cursor-user" => (Os::Linux, home.join(".cursor/mcp.json")),
        "cursor-project" => (Os::Linux, cwd.join(".cursor/mcp.json")),
        "vscode-workspace" => (Os::Linux, cwd.join(".vscode/mcp.json")),
        "vscode-settings" => (Os::Linux, home.join(".config/Code/User/settings.json")),
        "windsurf" => (Os::Linux, home.join(".codeium/windsurf/mcp_config.json")),
        other => panic!("fixture {name}: unknown slot {other}"),
    };
    let mut env = Env::new(os, &home, &cwd);
    env.appdata = Some(tmp.path().join("appdata"));
    fs::create_dir_all(rel.parent().expect("parent")).expect("mkdir");
    fs::create_dir_all(&cwd).expect("mkdir cwd");
    let original = fs::read(Path::new(DIR).join(name)).expect("read fixture");
    fs::write(&rel, &original).expect("write fixture");
    let loc = locations(&env)
        .into_iter()
        .find(|l| l.path == rel)
        .expect("slot path is a known location");
    Placed {
        _tmp: tmp,
        env,
        path: rel,
        original,
        loc,
    }
}

fn fixtures() -> Vec<(String, serde_json::Value)> {
    let text = fs::read_to_string(Path::new(DIR).join("expected.json")).expect("expected.json");
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("parse expected.json");
    // Every fixture must be listed, so a new one cannot be silently skipped.
    for f in fs::read_dir(DIR).expect("fixtures dir") {
        let n = f.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            n == "expected.json" || map.contains_key(&n),
            "fixture {n} missing from expected.json"
        );
    }
    map.into_iter().collect()
}

fn opts() -> InstallOptions {
    InstallOptions {
        client: None,
        server: None,
        dry_run: false,
        binary_path: BIN.into(),
    }
}

fn backups(p: &Placed) -> usize {
    super::fsio::backups_of(&p.path).len()
}

#[test]
fn detect_finds_the_expected_servers() {
    for (name, want) in fixtures() {
        let p = place(&name);
        let found = detect_all(&p.env, &NoStatus);
        let here: Vec<_> = found
            .servers
            .iter()
            .filter(|s| Path::new(&s.file) == p.path)
            .collect();
        if want["invalid"] == true {
            assert!(here.is_empty(), "{name}");
            assert_eq!(found.problems.len(), 1, "{name}: {:?}", found.problems);
            continue;
        }
        assert!(found.problems.is_empty(), "{name}: {:?}", found.problems);
        assert_eq!(
            here.len() as u64,
            want["servers"].as_u64().expect("servers"),
            "{name}"
        );
        let wrapped = here.iter().filter(|s| s.wrapped).count() as u64;
        assert_eq!(
            wrapped,
            want["wrapped"].as_u64().expect("wrapped"),
            "{name}"
        );
        let http = here
            .iter()
            .filter(|s| s.transport == Transport::Http)
            .count() as u64;
        assert_eq!(http, want["http"].as_u64().expect("http"), "{name}");
        assert!(here.iter().all(|s| s.client == p.loc.client), "{name}");
    }
}

/// Every entry is wrapped, with the right binary and argument shape.
fn check_installed(name: &str, p: &Placed, text: &str) {
    let root =
        parse(text, p.loc.dialect).unwrap_or_else(|e| panic!("{name}: output does not parse: {e}"));
    if p.loc.dialect == Dialect::Json {
        serde_json::from_str::<serde_json::Value>(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for e in entries(&root, p.loc.layout) {
        let args: Vec<String> = e
            .node
            .get("args")
            .map(|a| a.to_value())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        match classify(e.node) {
            Kind::WrappedStdio { .. } => {
                assert_eq!(&args[..3], ["wrap", "--server", e.name.as_str()], "{name}")
            }
            Kind::WrappedHttp { .. } => assert_eq!(args[0], "connect", "{name}"),
            // Left as it was, with a note: `connect` could not start it (issue 19).
            Kind::Http { .. }
                if e.node.get("headers").is_some()
                    || e.node.get("type").and_then(|t| t.as_str()) == Some("sse") =>
            {
                continue
            }
            other => panic!("{name}: {} not wrapped: {other:?}", e.name),
        }
        let cmd = e
            .node
            .get("command")
            .and_then(|c| c.as_str())
            .unwrap_or_default();
        // Entries wrapped by hand before install keep their own binary.
        assert!(
            cmd == BIN || crate::clients::servers::is_warden_binary(cmd),
            "{name}: {cmd}"
        );
    }
    if p.original.windows(2).any(|w| w == b"\r\n") {
        let bytes = text.as_bytes();
        let bare_lf = bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
        assert!(!bare_lf, "{name}: CRLF file got a bare LF");
    }
}

#[test]
fn install_twice_then_uninstall_is_byte_identical() {
    for (name, want) in fixtures() {
        let p = place(&name);
        let report = install(&p.env, &opts()).expect("install");
        let file = report
            .files
            .iter()
            .find(|f| f.path == p.path)
            .expect("file in report");
        let now = fs::read(&p.path).expect("read");
        if want["invalid"] == true {
            assert!(matches!(file.outcome, Outcome::Invalid(_)), "{name}");
            assert!(
                report.to_string().contains("left untouched"),
                "{name}: {report}"
            );
            assert_eq!(now, p.original, "{name}: invalid file was modified");
            assert_eq!(backups(&p), 0, "{name}");
            continue;
        }
        assert_eq!(file.outcome, Outcome::Changed, "{name}");
        let text = String::from_utf8(now.clone()).expect("utf8");
        check_installed(&name, &p, &text);
        let backup = file.backup.as_ref().expect("backup");
        assert_eq!(
            fs::read(backup).expect("backup"),
            p.original,
            "{name}: backup content"
        );

        let again = install(&p.env, &opts()).expect("install 2");
        assert_eq!(
            again.changed_files(),
            0,
            "{name}: second install changed something"
        );
        assert_eq!(fs::read(&p.path).expect("read"), now, "{name}");
        assert_eq!(backups(&p), 1, "{name}: second install made a backup");

        let un = uninstall(&p.env, &UninstallOptions::default()).expect("uninstall");
        assert_eq!(un.changed_files(), 1, "{name}");
        let back = String::from_utf8(fs::read(&p.path).expect("read")).expect("utf8");
        let orig = String::from_utf8(p.original.clone()).expect("utf8");
        if want["wrapped"].as_u64() == Some(0) {
            assert_eq!(back, orig, "{name}: install→uninstall not byte-identical");
        } else {
            // Hand-wrapped entries get unwrapped too, so compare with the
            // original after unwrapping it the same way.
            let q = place(&name);
            uninstall(&q.env, &UninstallOptions::default()).expect("uninstall original");
            assert_eq!(back.as_bytes(), fs::read(&q.path).expect("read"), "{name}");
        }
    }
}

#[test]
fn uninstall_without_backup_restores_bytes() {
    for (name, want) in fixtures() {
        if want["invalid"] == true || want["wrapped"].as_u64() != Some(0) {
            continue;
        }
        let p = place(&name);
        install(&p.env, &opts()).expect("install");
        for b in super::fsio::backups_of(&p.path) {
            fs::remove_file(b).expect("rm backup");
        }
        uninstall(&p.env, &UninstallOptions::default()).expect("uninstall");
        assert_eq!(fs::read(&p.path).expect("read"), p.original, "{name}");
    }
}

#[test]
fn dry_run_writes_nothing_and_shows_a_diff() {
    for (name, want) in fixtures() {
        if want["invalid"] == true {
            continue;
        }
        let p = place(&name);
        let report = install(
            &p.env,
            &InstallOptions {
                dry_run: true,
                ..opts()
            },
        )
        .expect("dry run");
        let file = report
            .files
            .iter()
            .find(|f| f.path == p.path)
            .expect("file");
        assert_eq!(file.outcome, Outcome::WouldChange, "{name}");
        let diff = file.diff.as_deref().expect("diff");
        assert!(
            diff.starts_with("--- ") && diff.contains("\n+") && diff.contains(BIN),
            "{name}: {diff}"
        );
        assert_eq!(fs::read(&p.path).expect("read"), p.original, "{name}");
        assert_eq!(backups(&p), 0, "{name}");
        assert!(report.to_string().contains("dry run"), "{name}");
    }
}

#[test]
fn hand_wrapped_entries_are_unwrapped() {
    let p = place("claude-desktop-windows__crlf_paths.json");
    let r = uninstall(&p.env, &UninstallOptions::default()).expect("uninstall");
    assert_eq!(r.files[0].servers, vec!["wrapped-by-hand"]);
    let text = String::from_utf8(fs::read(&p.path).expect("read")).expect("utf8");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let e = &v["mcpServers"]["wrapped-by-hand"];
    assert_eq!(e["command"], "node");
    assert_eq!(e["args"], serde_json::json!(["C:\\srv\\index.js"]));
}

#[test]
fn unrelated_content_is_preserved() {
    let p = place("vscode-workspace__jsonc.json");
    install(&p.env, &opts()).expect("install");
    let text = String::from_utf8(fs::read(&p.path).expect("read")).expect("utf8");
    for kept in [
        "// Workspace MCP servers",
        "/* Search, with a secret from inputs */",
        "// trailing comment",
        "\"${input:perplexity-key}\"",
    ] {
        assert!(text.contains(kept), "lost {kept}: {text}");
    }
    let root = parse(&text, Dialect::Jsonc).expect("jsonc");
    assert_eq!(root.get("inputs").expect("inputs").items().len(), 1);
    let gh = root
        .get("servers")
        .and_then(|s| s.get("github"))
        .expect("github");
    assert_eq!(gh.get("type").and_then(|t| t.as_str()), Some("stdio"));
    assert_eq!(
        gh.get("args").expect("args").to_value(),
        serde_json::json!([
            "connect",
            "https://api.githubcopilot.com/mcp/",
            "--server",
            "github"
        ])
    );
}
