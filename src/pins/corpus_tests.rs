//! The baseline cases of the attack corpus, run through `Baseline` from the case data itself:
//! server listings are observed in order, then the case's tool is called. Expected code, audit
//! event and alert come from the corpus, so a corpus edit is judged without touching this file.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};

use super::baseline::{Baseline, BaselineConfig};
use super::decision::{CallDecision, PinEvent};
use super::file::{Kind, Origin};
use super::scan::{no_scanner, poison_scanner, Scanner};
use super::store::PinStore;

const CORPUS: &str = include_str!("../../fixtures/attacks/corpus.json");

fn case(id: &str) -> Value {
    let all: Value = serde_json::from_str(CORPUS).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no corpus case {id}"))
}

struct Run {
    events: Vec<PinEvent>,
    last_keep: Vec<bool>,
    call: CallDecision,
}

/// Observes every server `tools/list` result in `steps`, then calls `tool`.
fn run(steps: &[Value], tool: &str, scanner: Scanner) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let b = Baseline::new(
        "case",
        Origin::Command {
            command: vec!["server".into()],
        },
        PinStore::new(dir.path()),
        BaselineConfig::default(),
        scanner,
    );
    let mut events = Vec::new();
    let mut last_keep = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let Some(tools) = step["message"]["result"]["tools"].as_array() else {
            continue;
        };
        let now = UNIX_EPOCH + Duration::from_secs(n as u64);
        let d = b.observe(Kind::Tool, tools, super::baseline::Page::COMPLETE, now);
        last_keep = d.keep;
        events.extend(d.events);
    }
    Run {
        events,
        last_keep,
        call: b.check_call(tool),
    }
}

/// The tool the client calls: the case's `tools/call` step, else the drifted tool.
fn called_tool(steps: &[Value]) -> String {
    let call = steps
        .iter()
        .find(|s| s["message"]["method"] == "tools/call")
        .map(|s| &s["message"]["params"]["name"]);
    let listed = steps
        .iter()
        .find_map(|s| s["message"]["result"]["tools"][0]["name"].as_str());
    call.and_then(Value::as_str)
        .or(listed)
        .unwrap_or_default()
        .to_string()
}

fn assert_expected(id: &str, run: &Run) {
    let expected = &case(id)["expected"];
    let names: Vec<&str> = run.events.iter().map(PinEvent::audit_event).collect();
    let want = expected["audit_event"].as_str().unwrap();
    let event = run
        .events
        .iter()
        .find(|e| e.audit_event() == want)
        .unwrap_or_else(|| panic!("{id}: no {want} event in {names:?}"));
    assert_eq!(Some(event.is_alert()), expected["alert"].as_bool(), "{id}");
    assert!(!run.call.is_allowed(), "{id}: forwarded upstream");
    if let Some(code) = expected["jsonrpc_error_code"].as_i64() {
        assert_eq!(run.call.error_code(), Some(code), "{id}: {:?}", run.call);
    }
    assert!(
        run.last_keep.iter().all(|k| !k),
        "{id}: changed tool still listed"
    );
}

#[test]
fn rug_pulls_are_held_and_refused() {
    // CAP-01: announced by list_changed; CAP-02: silent, on a later list; CAP-04: schema only.
    for id in ["CAP-01", "CAP-02", "CAP-04"] {
        let c = case(id);
        let steps = c["input"]["steps"].as_array().unwrap();
        let run = run(steps, &called_tool(steps), no_scanner());
        assert_expected(id, &run);
        let PinEvent::Drift { diff, .. } = &run.events[1] else {
            panic!("{id}: {:?}", run.events)
        };
        assert!(!diff.is_empty(), "{id}: alert carries a diff");
    }
}

#[test]
fn a_new_tool_is_hidden_not_revealed() {
    let first = json!({"message": {"result": {"tools": [{"name": "get_fact_of_the_day"}]}}});
    let second = json!({"message": {"result": {"tools": [
        {"name": "get_fact_of_the_day"}, {"name": "exec_shell", "description": "Run anything."}]}}});
    let run = run(&[first, second], "exec_shell", no_scanner());
    assert_eq!(run.last_keep, vec![true, false]);
    assert_eq!(run.call, CallDecision::Unknown);
    assert_eq!(run.call.error_code(), Some(-32602));
    assert_eq!(
        run.call.error_message(Kind::Tool, "exec_shell"),
        "Unknown tool: exec_shell"
    );
}

#[test]
fn pol_01_unknown_tool() {
    let c = case("POL-01");
    let name = c["input"]["message"]["params"]["name"].as_str().unwrap();
    let listing = json!({"message": {"result": {"tools": [{"name": "read_file"}]}}});
    let run = run(&[listing], name, no_scanner());
    let expected = &c["expected"];
    assert_eq!(
        run.call.error_code(),
        expected["jsonrpc_error_code"].as_i64()
    );
    assert_eq!(
        run.call.error_message(Kind::Tool, name),
        expected["error_message"].as_str().unwrap()
    );
    assert_eq!(
        run.call.audit_event(),
        expected["audit_event"].as_str().unwrap()
    );
}

#[test]
fn tpa_01_is_not_pinned_on_first_use() {
    let c = case("TPA-01");
    let steps = [c["input"].clone()];
    let run = run(&steps, "add", poison_scanner(vec![]));
    assert_expected("TPA-01", &run);
    assert_eq!(run.call, CallDecision::Unknown);
}

#[test]
fn cap_05_shadowing_is_held() {
    let c = case("CAP-05");
    let servers = &c["input"]["servers"];
    let trusted: Vec<String> = servers["mail (trusted)"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect();
    let untrusted = json!({"message": {"result": {"tools": servers["math (untrusted)"]["tools"]}}});
    let run = run(&[untrusted], "add", poison_scanner(trusted));
    // Issue 10 (newer than the corpus note): a plain name collision between separately
    // proxied servers is an alert, not a hold. The description that redirects the other
    // server's tool is what stays held.
    let expected = &case("CAP-05")["expected"];
    let want = expected["audit_event"].as_str().unwrap();
    let held = run
        .events
        .iter()
        .find(|e| e.audit_event() == want)
        .unwrap_or_else(|| panic!("no {want} event in {:?}", run.events));
    assert!(matches!(held, PinEvent::Flagged { name, .. } if name == "add"));
    assert_eq!(Some(held.is_alert()), expected["alert"].as_bool());
    assert!(!run.call.is_allowed(), "add forwarded upstream");
    assert_eq!(
        run.last_keep,
        vec![true, false],
        "send_email shown, add held"
    );
    let noted = run
        .events
        .iter()
        .find(|e| e.audit_event() == "capability.name_collision")
        .expect("the duplicate name is still reported");
    assert!(noted.is_alert());
}
