//! Comparing a real SDK client's transcripts: direct, and through `serve`.

use serde_json::Value;

use crate::support;

/// The direct transcript over stdio (the same client, its stdio transport).
pub fn stdio_transcript(client: &str) -> String {
    let r = super::repo();
    let (prog, script) = match client {
        "ts" => ("node".into(), r.join("tests/peers/ts_client.mjs")),
        _ => (
            r.join(".venv-peers/bin/python"),
            r.join("tests/peers/py_client.py"),
        ),
    };
    let out = std::process::Command::new(prog)
        .arg(script)
        .args(["everything", "--", "node"])
        .arg(super::everything_js())
        .arg("stdio")
        .output()
        .expect("direct client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn everything_stdio_config() -> String {
    format!(
        "[[servers]]\nname = \"everything\"\ncommand = [\"node\", {:?}, \"stdio\"]\n",
        super::everything_js().to_string_lossy()
    )
}

/// Direct and proxied transcripts must be equal but for the documented unknown-tool step.
pub fn assert_same(label: &str, direct: &str, proxied: &str) {
    let mut d: Value = serde_json::from_str(direct).expect("direct transcript");
    let mut p: Value = serde_json::from_str(proxied).expect("proxied transcript");
    let take = |t: &mut Value| -> Option<Value> {
        let steps = t.get_mut("steps")?.as_array_mut()?;
        let i = steps
            .iter()
            .position(|s| s["request"]["name"] == "no-such-tool")?;
        Some(steps.remove(i))
    };
    let (ds, ps) = (take(&mut d), take(&mut p));
    let ps = ps.expect("proxied transcript has the unknown-tool step");
    assert!(ds
        .expect("direct has it")
        .to_string()
        .contains("no-such-tool"));
    assert_eq!(ps["result"]["code"], -32602, "{label}: {ps}");
    assert!(ps["result"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("Unknown tool: no-such-tool"));
    assert!(
        d.get("failed").is_none(),
        "{label}: direct run failed: {direct}"
    );
    let (d, p) = (
        serde_json::to_string_pretty(&d).unwrap(),
        serde_json::to_string_pretty(&p).unwrap(),
    );
    if d != p {
        let first = d
            .lines()
            .zip(p.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{label}: proxied transcript differs at line {first}:\n direct: {:?}\nproxied: {:?}",
            d.lines().nth(first),
            p.lines().nth(first)
        );
    }
}

pub fn assert_audit_intact(serve: &super::Serve) {
    let records = serve.audit();
    assert!(records.iter().any(|r| r["method"] == "tools/call"));
    assert!(records.iter().any(|r| r["direction"] == "server_to_client"));
    let verify = std::process::Command::new(support::warden_bin())
        .args(["audit", "verify"])
        .arg(serve.audit_path())
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
