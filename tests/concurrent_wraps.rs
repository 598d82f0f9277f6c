//! Desktop hosts start several `wrap` processes for one server at once. Four of them, sharing
//! one state dir, race for the first pin and record trust observations at the same time: the
//! pin file ends up whole and valid, and the trust store counts every session and every call
//! (no lost update, no torn file).

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::{Options, Wrapped};

const PROCESSES: usize = 4;
const CALLS: usize = 20;

#[test]
fn four_wraps_share_pins_and_trust_safely() {
    let state = tempfile::tempdir().expect("state");
    let shared = state.path().to_string_lossy().into_owned();
    let workers: Vec<_> = (0..PROCESSES)
        .map(|i| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut w = Wrapped::start(Options {
                    extra_env: vec![("MCP_WARDEN_STATE".into(), shared)],
                    ..Default::default()
                });
                w.initialize(); // lists tools: the first listing races to pin
                for n in 0..CALLS {
                    let text = format!("p{i}-{n}");
                    w.send(&json!({"jsonrpc":"2.0","id":n,"method":"tools/call","params":{"name":"echo","arguments":{"text":text}}}));
                    let r = w.recv();
                    assert_eq!(r["result"]["content"][0]["text"], text, "process {i}: {r}");
                }
                assert_eq!(w.finish(), 0);
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }

    // One pin file, whole, listing the tool; no temp files left behind.
    let pins = state.path().join("pins");
    let pin: Value =
        serde_json::from_slice(&std::fs::read(pins.join("echo.json")).expect("pin file"))
            .expect("pin file is JSON");
    assert!(pin["tools"]["echo"]["sha256"].is_string(), "{pin}");
    for entry in std::fs::read_dir(&pins).expect("pins dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(!name.contains(".tmp"), "temp file left: {name}");
    }

    // Every session and every call of every process was counted.
    let out = Command::new(support::warden_bin())
        .args(["trust", "echo", "--json"])
        .env("MCP_WARDEN_STATE", state.path())
        .output()
        .expect("trust");
    let report: Value = serde_json::from_slice(&out.stdout).expect("trust json");
    let factor = |name: &str| {
        report["factors"]
            .as_array()
            .expect("factors")
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .expect("factor")
    };
    assert_eq!(
        factor("success")["evidence"]["calls_ok"],
        (PROCESSES * CALLS) as u64,
        "{report}"
    );
    assert_eq!(
        factor("age_history")["evidence"]["sessions"],
        PROCESSES as u64,
        "{report}"
    );
    assert_eq!(
        factor("availability")["evidence"]["starts_ok"],
        PROCESSES as u64,
        "{report}"
    );
}
