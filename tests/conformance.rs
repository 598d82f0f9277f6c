//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, its `server --url`
//! scenarios) against our fixture server directly and through `mcp-warden serve`: the set of
//! scenarios that pass through the proxy must equal the set that passes directly
//! (tests/conformance/compare.sh does the runs and the comparison), for the pinned 0.1.16 and
//! for the 0.2.0 line in both spec versions (`compare_next.sh`).

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

/// Issue 17: the 0.2.0 line (`@modelcontextprotocol/conformance@0.2.0-alpha.12`) for
/// `--spec-version 2025-11-25` and `2026-07-28` (`--suite all` and `active`), directly against
/// the dual-era fixture and through `serve` — each era on a fresh state dir and both eras one
/// after the other on one `serve` instance, in both orders (the pins must key their baseline
/// per variant, or the second era's tools read as never-approved). Every scenario that passes
/// directly must pass through serve (tests/conformance/compare_next.sh does the runs, prints the
/// scenario table and the totals).
#[test]
fn next_suite_both_eras_through_one_serve_equal_direct() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = repo.join("tests/peers/node_modules/conformance-next/package.json");
    assert!(
        suite.exists(),
        "the 0.2.0 conformance suite is not installed: run scripts/setup-peers.sh"
    );
    let out = Command::new("bash")
        .arg(repo.join("tests/conformance/compare_next.sh"))
        .env("MCP_WARDEN_BIN", env!("CARGO_BIN_EXE_mcp-warden"))
        .current_dir(repo)
        .output()
        .expect("run compare_next.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The table and totals are the test's report: shown with `--nocapture`.
    println!("{stdout}");
    assert!(
        out.status.success(),
        "conformance (0.2.0) results differ through serve:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both eras really ran, whole: the 2026 run has its stateless and MRTR scenarios.
    for needle in [
        "TOTAL direct-26-all SUMMARY passed=40 failed=0",
        "TOTAL A2-26-all SUMMARY passed=40",
        "TOTAL direct-25-all SUMMARY passed=33 failed=0",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }
}
