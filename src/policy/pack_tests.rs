//! The shipped packs in `policies/` decide sample calls exactly as their
//! comments say, and the corpus shapes POL-03/04/06/08 go through them
//! (github, postgres, memory, everything, RES-04 and RL-01 are in
//! `pack_tests_servers.rs`).

use serde_json::{json, Value};

use crate::policy::{evaluate, Action, Decision, DenyKind, PolicySet, Risk, ServerRef};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

pub(super) fn packs() -> PolicySet {
    PolicySet::load_dir(std::path::Path::new(DIR)).unwrap()
}

pub(super) fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub(super) fn decide(
    set: &PolicySet,
    name: &str,
    argv: &[String],
    tool: &str,
    args: Value,
) -> Decision {
    let p = set.resolve(&ServerRef { name, argv }, tool, None);
    evaluate(&p, Some(&args))
}

pub(super) fn kind(d: &Decision) -> Option<DenyKind> {
    match d {
        Decision::Deny { kind, .. } => Some(*kind),
        _ => None,
    }
}

pub(super) fn is_approve(d: &Decision) -> bool {
    matches!(d, Decision::Approve { .. })
}

#[test]
fn all_packs_load_and_each_applies_only_to_its_server() {
    let s = packs();
    assert_eq!(
        s.file_names(),
        [
            "everything.toml",
            "fetch.toml",
            "filesystem.toml",
            "github.toml",
            "memory.toml",
            "postgres.toml"
        ]
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["npx", "-y", "@modelcontextprotocol/server-filesystem", "/d"],
            "filesystem.toml",
        ),
        (
            &["docker", "run", "-i", "--rm", "mcp/filesystem", "/projects"],
            "filesystem.toml",
        ),
        (&["uvx", "mcp-server-fetch"], "fetch.toml"),
        (
            &[
                "docker",
                "run",
                "-i",
                "--rm",
                "ghcr.io/github/github-mcp-server",
            ],
            "github.toml",
        ),
        (
            &[
                "npx",
                "-y",
                "@modelcontextprotocol/server-postgres",
                "postgresql://db/x",
            ],
            "postgres.toml",
        ),
        (
            &["npx", "-y", "@modelcontextprotocol/server-memory"],
            "memory.toml",
        ),
        (
            &["npx", "-y", "@modelcontextprotocol/server-everything"],
            "everything.toml",
        ),
    ];
    for (cmd, file) in cases {
        let a = argv(cmd);
        assert_eq!(
            s.files_for(&ServerRef {
                name: "srv",
                argv: &a
            }),
            [*file],
            "{cmd:?}"
        );
    }
    assert_eq!(
        s.files_for(&ServerRef {
            name: "github",
            argv: &[]
        }),
        ["github.toml"]
    );
    assert!(s
        .files_for(&ServerRef {
            name: "mystery",
            argv: &argv(&["./mystery"])
        })
        .is_empty());
}

fn fs_argv() -> Vec<String> {
    argv(&[
        "npx",
        "-y",
        "@modelcontextprotocol/server-filesystem",
        "/workspace/project",
    ])
}

#[test]
fn filesystem_pack() {
    let s = packs();
    let a = fs_argv();
    let srv = ServerRef {
        name: "fs",
        argv: &a,
    };
    for t in [
        "read_file",
        "read_text_file",
        "read_media_file",
        "read_multiple_files",
        "list_directory",
        "list_directory_with_sizes",
        "list_allowed_directories",
        "directory_tree",
        "get_file_info",
        "search_files",
    ] {
        assert_eq!(s.resolve(&srv, t, None).risk, Risk::Low, "{t}");
    }
    assert_eq!(s.resolve(&srv, "create_directory", None).risk, Risk::Medium);
    for t in ["write_file", "edit_file", "move_file", "brand_new_tool"] {
        let p = s.resolve(&srv, t, None);
        assert_eq!((p.risk, p.action), (Risk::High, Action::Approve), "{t}");
    }
    assert_eq!(
        s.resolve(&srv, "write_file", None)
            .rate
            .unwrap()
            .to_string(),
        "10/min"
    );
    assert_eq!(
        s.resolve(&srv, "read_file", None).rate.unwrap().to_string(),
        "120/min"
    );

    let ok = |tool: &str, args: Value| decide(&s, "fs", &a, tool, args);
    assert_eq!(
        ok(
            "read_text_file",
            json!({"path": "/workspace/project/src/main.rs", "head": 10})
        ),
        Decision::Allow
    );
    assert_eq!(
        ok(
            "read_multiple_files",
            json!({"paths": ["/workspace/project/a", "/workspace/project/b"]})
        ),
        Decision::Allow
    );
    assert_eq!(
        kind(&ok(
            "read_multiple_files",
            json!({"paths": ["/workspace/project/a", "/etc/passwd"]})
        )),
        Some(DenyKind::PathOutsideRoot)
    );
    assert_eq!(
        ok(
            "list_directory_with_sizes",
            json!({"path": "/workspace/project", "sortBy": "size"})
        ),
        Decision::Allow
    );
    assert_eq!(
        kind(&ok(
            "list_directory_with_sizes",
            json!({"path": "/workspace/project", "sortBy": "mtime"})
        )),
        Some(DenyKind::ArgumentViolation)
    );
    assert!(is_approve(&ok(
        "write_file",
        json!({"path": "/workspace/project/x", "content": "hi"})
    )));
    assert_eq!(
        kind(&ok(
            "write_file",
            json!({"path": "/etc/cron.d/x", "content": "hi"})
        )),
        Some(DenyKind::PathOutsideRoot),
        "refused before approval"
    );
    assert_eq!(
        kind(&ok(
            "move_file",
            json!({"source": "/workspace/project/x", "destination": "/tmp/x"})
        )),
        Some(DenyKind::PathOutsideRoot)
    );
    assert_eq!(
        kind(&ok("brand_new_tool", json!({"path": "/root"}))),
        Some(DenyKind::PathOutsideRoot)
    );
    assert_eq!(ok("list_allowed_directories", json!({})), Decision::Allow);
}

#[test]
fn corpus_pol03_pol04_pol06_through_filesystem_pack() {
    let s = packs();
    let a = fs_argv();
    let read = |path: &str| decide(&s, "filesystem", &a, "read_file", json!({ "path": path }));
    // POL-03: traversal is refused as malformed before any root comparison.
    let d = read("/workspace/project/../../../etc/passwd");
    assert!(
        matches!(
            kind(&d),
            Some(DenyKind::PathInvalid | DenyKind::PathOutsideRoot)
        ),
        "{d:?}"
    );
    assert_eq!(kind(&d).map(DenyKind::jsonrpc_code), Some(-32013));
    // POL-04: sibling sharing the root's string prefix.
    let d = read("/workspace/project_secrets/id_rsa");
    assert_eq!(d.audit_event(), "policy.path_outside_root");
    assert!(matches!(&d, Decision::Deny { rule, .. } if rule == "read_file.path.path_under"));
    // POL-06: every encoded / platform variant is malformed.
    for p in [
        "/workspace/project/%2e%2e/%2e%2e/etc/passwd",
        "/workspace/project/..%2f..%2fetc/passwd",
        "C:\\workspace\\project\\..\\..\\Windows\\win.ini",
        "\\\\?\\C:\\Windows\\win.ini",
        "/workspace/project/a.txt\u{0}/../../../etc/passwd",
        "C:\\workspace\\project\\README.md:hidden_stream",
        "file:///etc/shadow",
        "~/.ssh/id_rsa",
        "/workspace/project/\u{202e}exe.txt",
    ] {
        let d = read(p);
        assert_eq!(d.audit_event(), "policy.path_invalid", "{p:?}: {d:?}");
    }
    assert_eq!(read("/workspace/project/README.md"), Decision::Allow);
    assert_eq!(read("file:///workspace/project/README.md"), Decision::Allow);
}

#[test]
fn fetch_pack_and_corpus_pol08() {
    let s = packs();
    let a = argv(&["uvx", "mcp-server-fetch"]);
    let p = s.resolve(
        &ServerRef {
            name: "f",
            argv: &a,
        },
        "fetch",
        None,
    );
    assert_eq!(
        (p.risk, p.rate.unwrap().to_string().as_str()),
        (Risk::Medium, "30/min")
    );
    let fetch = |url: &str| {
        decide(
            &s,
            "f",
            &a,
            "fetch",
            json!({ "url": url, "max_length": 5000 }),
        )
    };
    for url in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::ffff:169.254.169.254]/",
        "http://0xA9FEA9FE/",
        "http://2852039166/",
        "http://127.1:6379/",
        "http://localhost:6277/sse?transportType=stdio&command=id",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "https://rebind.attacker.example/ (resolves public, then 10.0.0.5)",
        "https://ok.example/r (302 -> http://10.0.0.1/admin)",
    ] {
        let d = fetch(url);
        assert_eq!(d.audit_event(), "policy.ssrf", "{url}: {d:?}");
        assert_eq!(kind(&d).map(DenyKind::jsonrpc_code), Some(-32013));
    }
    assert_eq!(fetch("https://docs.python.org/3/"), Decision::Allow);
    assert_eq!(
        kind(&fetch(&format!("https://a.example/{}", "x".repeat(2100)))),
        Some(DenyKind::ArgumentViolation)
    );
    let d = decide(
        &s,
        "f",
        &a,
        "fetch",
        json!({"url": "https://example.com/", "raw": "yes"}),
    );
    assert_eq!(kind(&d), Some(DenyKind::ArgumentViolation));
}
