//! Tests for `set.rs`: applicability, most-specific-wins, defaults, `$SERVER_ARGS`.

use serde_json::json;

use super::*;

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const BASE: &str = r#"
[server]
match = ["fs", "*server-filesystem*"]
default_risk = "medium"
rate = "60/min"

[[tool]]
name = "*"
risk = "medium"

[[tool]]
name = "read_*"
risk = "low"
[tool.args.path]
path_under = ["$SERVER_ARGS"]

[[tool]]
name = "read_file*"
risk = "low"
rate = "5/s"

[[tool]]
name = "write_file"
risk = "high"
action = "approve"
"#;

fn set() -> PolicySet {
    PolicySet::from_sources(&[("a-base.toml", BASE)]).unwrap()
}

#[test]
fn most_specific_rule_wins() {
    let s = set();
    let a = argv(&[
        "npx",
        "-y",
        "@modelcontextprotocol/server-filesystem",
        "/data",
    ]);
    let srv = ServerRef {
        name: "other",
        argv: &a,
    };
    let p = s.resolve(&srv, "write_file", None);
    assert_eq!((p.risk, p.action), (Risk::High, Action::Approve));
    assert_eq!(p.rule_name, "a-base.toml:tool[write_file]");
    // `read_file*` (9 literal chars) beats `read_*` (5) beats `*`.
    let p = s.resolve(&srv, "read_file", None);
    assert_eq!(p.rule_name, "a-base.toml:tool[read_file*]");
    assert_eq!(p.rate, Some(Rate::parse("5/s").unwrap()));
    assert!(
        p.args.is_empty(),
        "rules are not merged: read_file* has no args"
    );
    let p = s.resolve(&srv, "read_media", None);
    assert_eq!(p.rule_name, "a-base.toml:tool[read_*]");
    assert_eq!(
        p.rate,
        Some(Rate::parse("60/min").unwrap()),
        "server default"
    );
    let p = s.resolve(&srv, "zap", None);
    assert_eq!(p.rule_name, "a-base.toml:tool[*]");
}

#[test]
fn exact_beats_longer_glob_and_later_file_breaks_ties() {
    let a = "[server]\nmatch=['x']\n[[tool]]\nname='ab'\nrisk='low'\n[[tool]]\nname='a*'\nrisk='high'\n";
    let b = "[server]\nmatch=['x']\n[[tool]]\nname='a?'\nrisk='critical'\n";
    let c = "[server]\nmatch=['x']\n[[tool]]\nname='a*'\nrisk='medium'\n";
    let s = PolicySet::from_sources(&[("a.toml", a), ("b.toml", b), ("c.toml", c)]).unwrap();
    let srv = ServerRef {
        name: "x",
        argv: &[],
    };
    // Exact `ab` beats the globs `a?` and `a*`, whatever their order.
    assert_eq!(s.resolve(&srv, "ab", None).rule_name, "a.toml:tool[ab]");
    // `a?` and `a*` tie on specificity: c.toml (later) wins over a.toml, b.toml.
    let p = s.resolve(&srv, "ac", None);
    assert_eq!(
        (p.rule_name.as_str(), p.risk),
        ("c.toml:tool[a*]", Risk::Medium)
    );
    assert_eq!(s.file_names(), ["a.toml", "b.toml", "c.toml"]);
}

#[test]
fn server_matching_by_name_or_command_line() {
    let s = set();
    let a = argv(&["node", "/opt/server-filesystem/index.js", "/data"]);
    assert_eq!(
        s.files_for(&ServerRef {
            name: "zzz",
            argv: &a
        }),
        ["a-base.toml"]
    );
    assert_eq!(
        s.files_for(&ServerRef {
            name: "fs",
            argv: &[]
        }),
        ["a-base.toml"]
    );
    let other = argv(&["uvx", "mcp-server-fetch"]);
    let srv = ServerRef {
        name: "fetch",
        argv: &other,
    };
    assert!(s.files_for(&srv).is_empty());
    assert_eq!(s.resolve(&srv, "write_file", None).rule_name, "default");
    assert!(s.dir().is_none());
}

#[test]
fn annotation_defaults_only_fill_gaps() {
    let none = PolicySet::empty();
    let srv = ServerRef {
        name: "x",
        argv: &[],
    };
    let d = json!({"destructiveHint": true});
    let r = json!({"readOnlyHint": true});
    let both = json!({"readOnlyHint": true, "destructiveHint": true});
    assert_eq!(none.resolve(&srv, "t", Some(&d)).risk, Risk::High);
    assert_eq!(none.resolve(&srv, "t", Some(&r)).risk, Risk::Low);
    assert_eq!(none.resolve(&srv, "t", Some(&both)).risk, Risk::High);
    assert_eq!(none.resolve(&srv, "t", Some(&json!({}))).risk, Risk::Medium);
    assert_eq!(none.resolve(&srv, "t", None).action, Action::Allow);
    // Server default_risk when annotations say nothing.
    let s = PolicySet::from_sources(&[("s.toml", "[server]\nmatch=['x']\ndefault_risk='high'\n")])
        .unwrap();
    assert_eq!(s.resolve(&srv, "t", None).risk, Risk::High);
    assert_eq!(s.resolve(&srv, "t", Some(&r)).risk, Risk::Low);
    assert_eq!(s.resolve(&srv, "t", None).rule_name, "s.toml:server");
    // A policy's own risk beats a lying readOnlyHint.
    let w = set();
    let fs = ServerRef {
        name: "fs",
        argv: &[],
    };
    assert_eq!(w.resolve(&fs, "write_file", Some(&r)).risk, Risk::High);
}

#[test]
fn critical_always_needs_approval_but_deny_stays_deny() {
    let t = "[server]\nmatch=['x']\naction='allow'\n[[tool]]\nname='nuke'\nrisk='critical'\n\
             [[tool]]\nname='gone'\nrisk='critical'\naction='deny'\n";
    let s = PolicySet::from_sources(&[("c.toml", t)]).unwrap();
    let srv = ServerRef {
        name: "x",
        argv: &[],
    };
    assert_eq!(s.resolve(&srv, "nuke", None).action, Action::Approve);
    assert_eq!(s.resolve(&srv, "gone", None).action, Action::Deny);
    assert!(s.is_hidden(&srv, "gone", None));
    assert!(!s.is_hidden(&srv, "nuke", None));
}

#[test]
fn server_fields_merge_later_file_wins() {
    let a = "[server]\nmatch=['x']\nmin_trust=0.1\nrate='1/s'\n";
    let b = "[server]\nmatch=['x']\nmin_trust=0.9\n";
    let s = PolicySet::from_sources(&[("a.toml", a), ("b.toml", b)]).unwrap();
    let p = s.resolve(
        &ServerRef {
            name: "x",
            argv: &[],
        },
        "t",
        None,
    );
    assert_eq!(p.min_trust, Some(0.9));
    assert_eq!(p.rate, Some(Rate::parse("1/s").unwrap()));
    assert_eq!(p.rule_name, "b.toml:server");
    assert_eq!(p.required_trust(0.3, 0.5, 0.7), 0.9);
    let none = PolicySet::empty().resolve(
        &ServerRef {
            name: "x",
            argv: &[],
        },
        "t",
        None,
    );
    assert_eq!(none.required_trust(0.3, 0.5, 0.7), 0.5);
}

#[test]
fn server_args_become_path_roots() {
    let s = set();
    let a = argv(&[
        "npx",
        "-y",
        "@modelcontextprotocol/server-filesystem",
        "/data",
        "/srv/x/",
        "rel",
        "~/h",
    ]);
    let p = s.resolve(
        &ServerRef {
            name: "fs",
            argv: &a,
        },
        "read_media",
        None,
    );
    let roots = p.args[0].1.path_under.clone().unwrap();
    assert_eq!(roots, ["/data", "/srv/x"]);
    assert!(p.args[0].1.check(&json!("/data/a.txt")).is_ok());
    assert!(p.args[0].1.check(&json!("/srv/xy")).is_err());
    // No usable root on the command line: every path is refused.
    let p = s.resolve(
        &ServerRef {
            name: "fs",
            argv: &[],
        },
        "read_media",
        None,
    );
    assert!(p.args[0].1.check(&json!("/data/a.txt")).is_err());
}

#[test]
fn server_arg_roots_start_after_the_matching_element() {
    let globs = vec!["filesystem".to_string(), "*server-filesystem*".to_string()];
    let a = argv(&["node", "/opt/server-filesystem/dist/index.js", "/data"]);
    assert_eq!(server_arg_roots(&globs, &a), ["/data"]);
    // Nothing matches element-wise: everything after argv[0] is considered.
    let a = argv(&["/usr/bin/fs-server", "--flag", "/", "/a/../b"]);
    assert_eq!(server_arg_roots(&globs, &a), ["/"]);
}

#[test]
fn versions_track_content() {
    let a = PolicySet::from_sources(&[("a.toml", BASE)]).unwrap();
    let b = PolicySet::from_sources(&[("a.toml", BASE)]).unwrap();
    let c = PolicySet::from_sources(&[("b.toml", BASE)]).unwrap();
    assert_eq!(a.version(), b.version());
    assert_ne!(a.version(), c.version());
    assert_eq!(a.version().len(), 64);
    assert_ne!(PolicySet::empty().version(), a.version());
}

#[test]
fn load_dir_reads_sorted_toml_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.toml"), "[server]\nmatch=['x']\n").unwrap();
    std::fs::write(dir.path().join("a.toml"), "[server]\nmatch=['y']\n").unwrap();
    std::fs::write(dir.path().join(".#a.toml"), "garbage").unwrap();
    std::fs::write(dir.path().join("notes.md"), "garbage").unwrap();
    std::fs::create_dir(dir.path().join("sub.toml")).unwrap();
    let s = PolicySet::load_dir(dir.path()).unwrap();
    assert_eq!(s.file_names(), ["a.toml", "b.toml"]);
    assert_eq!(s.dir(), Some(dir.path()));
    std::fs::write(
        dir.path().join("c.toml"),
        "[server]\nmatch=['x']\nbad = 1\n",
    )
    .unwrap();
    let e = PolicySet::load_dir(dir.path()).unwrap_err();
    assert_eq!(e.file, dir.path().join("c.toml"));
    assert_eq!(e.line, Some(3));
    let e = PolicySet::load_dir(&dir.path().join("missing")).unwrap_err();
    assert!(e.reason.contains("cannot read policy directory"), "{e}");
}
