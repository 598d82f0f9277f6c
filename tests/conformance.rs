//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, its `server --url`
//! scenarios) against our fixture server directly and through `mcp-warden serve`: the set of
//! scenarios that pass through the proxy must equal the set that passes directly
//! (tests/conformance/compare.sh does the runs and the comparison).

use std::path::Path;
use std::process::Command;

#[test]
fn scenarios_passing_through_serve_equal_those_passing_directly() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite =
        repo.join("tests/peers/node_modules/@modelcontextprotocol/conformance/package.json");
    assert!(
        suite.exists(),
        "the conformance suite is not installed: run scripts/setup-peers.sh"
    );
    let out = Command::new("bash")
        .arg(repo.join("tests/conformance/compare.sh"))
        .env("MCP_WARDEN_BIN", env!("CARGO_BIN_EXE_mcp-warden"))
        .current_dir(repo)
        .output()
        .expect("run compare.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "conformance results differ through serve:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("SKIPPED"),
        "the through-serve half did not run:\n{stdout}"
    );
    // Both halves ran the whole suite.
    assert!(
        stdout.matches("total=32").count() >= 2,
        "expected two full runs:\n{stdout}"
    );
}
