//! Tests for `file.rs`: the format, and errors that name path, line and key.

use super::*;

fn parse(text: &str) -> Result<PolicyFile, PolicyError> {
    PolicyFile::parse(Path::new("/p/test.toml"), text)
}

const GOOD: &str = r#"
[server]
match = ["filesystem", "*server-filesystem*"]
default_risk = "medium"
min_trust = 0.2
rate = "60/min"

[[tool]]
name = "read_*"
risk = "low"
[tool.args.path]
path_under = ["$SERVER_ARGS", "/srv"]

[[tool]]
name = "write_file"
risk = "high"
action = "approve"
rate = "10/min"
"#;

#[test]
fn parses_the_spec_example() {
    let f = parse(GOOD).unwrap();
    assert_eq!(f.name, "test.toml");
    assert_eq!(f.server.matches.get_ref().len(), 2);
    assert_eq!(f.server.default_risk, Some(Risk::Medium));
    assert_eq!(f.server.min_trust, Some(Trust(0.2)));
    assert_eq!(f.tool.len(), 2);
    let spec = &f.tool[0].args["path"];
    assert!(spec.server_args_roots);
    assert_eq!(
        spec.rule.path_under.as_deref(),
        Some(&["/srv".to_string()][..])
    );
    assert_eq!(f.tool[1].action, Some(Action::Approve));
    assert_eq!(
        f.tool[1].rate,
        Some(Rate {
            count: 10,
            per: Duration::from_secs(60)
        })
    );
}

#[test]
fn server_args_alone_leaves_no_static_roots() {
    let f = parse("[server]\nmatch=['x']\n[[tool]]\nname='r'\n[tool.args.path]\npath_under=['$SERVER_ARGS']\n").unwrap();
    let spec = &f.tool[0].args["path"];
    assert!(spec.server_args_roots && spec.rule.path_under.is_none());
}

fn err(text: &str) -> PolicyError {
    parse(text).unwrap_err()
}

#[test]
fn errors_name_file_line_and_key() {
    let e = err("[server]\nmatch = ['x']\n\n[[tool]]\nname = 'a'\nrisk = 'extreme'\n");
    assert_eq!(e.file, Path::new("/p/test.toml"));
    assert_eq!(e.line, Some(6));
    assert_eq!(e.key, "tool[0].risk");
    assert!(e.reason.contains("extreme"), "{e}");
    assert!(e.to_string().starts_with("/p/test.toml:6: tool[0].risk: "));

    let e = err("[server]\nmatch = ['x']\n[[tool]]\nname = 'a'\nbogus = 1\n");
    assert_eq!((e.line, e.key.as_str()), (Some(5), "tool[0].bogus"));

    let e = err("[server]\nmatch = ['x']\n[[tool]]\nname = 'a'\n[tool.args.q]\npattern = '('\n");
    assert_eq!(e.line, Some(5));
    assert!(e.reason.contains("pattern: invalid pattern"), "{e}");

    let e = err("[server]\nmatch = ['x'\n");
    assert_eq!(e.line, Some(2), "{e}");

    let e = err("[server]\nmatch = ['x']\nrate = '10/fortnight'\n");
    assert_eq!((e.line, e.key.as_str()), (Some(3), "server.rate"));

    let e = err("[server]\nmatch = ['x']\nmin_trust = 1.5\n");
    assert_eq!(e.line, Some(3));

    let e = err("[server]\nmatch = []\n");
    assert_eq!((e.line, e.key.as_str()), (Some(2), "server.match"));

    let e = err("[[tool]]\nname = 'a'\n");
    assert!(e.reason.contains("server"), "{e}");

    let e = err("[server]\nmatch=['x']\n[[tool]]\nname='a'\n[[tool]]\nname='a'\n");
    assert_eq!((e.line, e.key.as_str()), (Some(6), "tool[1].name"));

    let e = err("[server]\nmatch=['x']\n[[tool]]\nname='a'\n[tool.args.p]\npath_under=['$HOME']\n");
    assert!(e.reason.contains("unknown placeholder"), "{e}");

    let e = err("[server]\nmatch=['x']\n[[tool]]\nname='a'\n[tool.args.p]\npath_under=['rel']\n");
    assert!(e.reason.contains("not usable"), "{e}");
}

#[test]
fn rates() {
    assert_eq!(Rate::parse("5/s").unwrap().per, Duration::from_secs(1));
    assert_eq!(Rate::parse("100/hour").unwrap().count, 100);
    assert_eq!(Rate::parse("7/day").unwrap().to_string(), "7/day");
    assert_eq!(Rate::parse(" 10 / min ").unwrap().to_string(), "10/min");
    for bad in ["0/s", "x/s", "10", "10/week", "-1/s", "10/"] {
        assert!(Rate::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn remember_is_session_or_never() {
    let f = parse(
        "[server]\nmatch = [\"fs\"]\n[[tool]]\nname = \"write_file\"\naction = \"approve\"\nremember = \"session\"\n[[tool]]\nname = \"rm\"\naction = \"approve\"\n",
    )
    .unwrap();
    assert_eq!(f.tool[0].remember, Some(Remember::Session));
    assert_eq!(f.tool[1].remember, None);
    let e = err("[server]\nmatch = [\"fs\"]\n[[tool]]\nname = \"w\"\nremember = \"forever\"\n");
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.key.contains("remember"), "{e}");
}
