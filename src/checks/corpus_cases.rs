//! Data-driven run of the attack corpus (fixtures/attacks/corpus.json) through
//! the pure checks. Cases are walked generically by category, input shape and
//! expected action; no attack string is repeated here, so new variants added
//! to the corpus are judged without touching this file.
//!
//! Not judged here (need state, configuration or the pipeline): POL-01/02
//! (tool inventory and policy), POL-07 variants whose only violation is an
//! unknown argument (`additionalProperties: false`, a schema check) or that
//! have no rule in `policy_example`, RES-01's private→public flow (session
//! taint), SMP-01's token cap (configuration).

use serde_json::Value;

use crate::checks::arg_rules::ArgRule;
use crate::checks::elicitation_scan::scan_elicitation;
use crate::checks::net_rule::deny_private_addresses;
use crate::checks::path_rule::path_under;
use crate::checks::poison_scan::{
    max_severity, scan_definition, scan_text, strip_terminal_escapes, Severity,
};
use crate::checks::secrets::{find_secrets_in_json, redact_json};

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/attacks/corpus.json"
));
const NONE: &[&str] = &[];
/// The corpus' filesystem cases assume this root unless a case names one.
const DEFAULT_ROOT: &str = "/workspace/project";
/// Findings at or above this hold a definition or result back.
const HOLD: Severity = Severity::Medium;

fn cases() -> Vec<Value> {
    let v: Value = serde_json::from_str(CORPUS).expect("corpus parses");
    v.as_array().expect("corpus is an array").clone()
}

/// Every JSON-RPC message in a case: `message`, `variants[]`, `steps[].message`.
fn messages(input: &Value) -> Vec<&Value> {
    let mut out: Vec<&Value> = input.get("message").into_iter().collect();
    out.extend(
        input
            .get("variants")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for step in input
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.extend(step.get("message"));
    }
    out
}

fn arguments(msg: &Value) -> impl Iterator<Item = (&String, &Value)> {
    msg.pointer("/params/arguments")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

fn all_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| all_strings(x, out)),
        _ => {}
    }
}

fn action(case: &Value) -> &str {
    case.pointer("/expected/action")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn id(case: &Value) -> &str {
    case["id"].as_str().unwrap_or("?")
}

fn of_category<'a>(all: &'a [Value], cats: &[&str]) -> Vec<&'a Value> {
    let v: Vec<&Value> = all
        .iter()
        .filter(|c| cats.contains(&c["category"].as_str().unwrap_or("")))
        .collect();
    assert!(!v.is_empty(), "no corpus cases in {cats:?}");
    v
}

#[test]
fn path_cases_are_refused() {
    for case in of_category(&cases(), &["path", "audit_integrity"]) {
        let note = case
            .pointer("/input/preconditions_note")
            .and_then(Value::as_str)
            .unwrap_or("");
        let root = note
            .split("allowed root ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or(DEFAULT_ROOT);
        let roots = vec![root.to_string()];
        let mut judged = 0;
        for msg in messages(&case["input"]) {
            for (k, v) in arguments(msg) {
                let (Some(s), true) = (
                    v.as_str(),
                    ["path", "file", "dir"].iter().any(|p| k.contains(p)),
                ) else {
                    continue;
                };
                assert!(
                    path_under(s, &roots).is_err(),
                    "{}: {s:?} under {roots:?} must be refused",
                    id(case)
                );
                judged += 1;
            }
        }
        assert!(judged > 0, "{}: nothing judged", id(case));
    }
}

#[test]
fn ssrf_targets_are_refused() {
    for case in of_category(&cases(), &["ssrf", "oauth_ssrf"]) {
        let mut urls = Vec::new();
        for msg in messages(&case["input"]) {
            urls.extend(arguments(msg).filter_map(|(_, v)| v.as_str()));
        }
        if urls.is_empty() {
            // Headers / metadata documents: pull every URL out of the strings.
            let mut strs = Vec::new();
            all_strings(&case["input"], &mut strs);
            for s in strs {
                urls.extend(s.split(['"', ' ', ',']).filter(|t| t.contains("://")));
            }
        }
        assert!(!urls.is_empty(), "{}: nothing judged", id(case));
        for u in urls {
            assert!(
                deny_private_addresses(u).is_err(),
                "{}: {u:?} must be refused",
                id(case)
            );
        }
    }
}

/// POL-07's `policy_example` in prose: `"tool.arg": "^regex$ and not starting with '-'"`.
#[test]
fn argument_rules_from_policy_example() {
    for case in of_category(&cases(), &["arguments"]) {
        let example = case
            .pointer("/input/policy_example")
            .and_then(Value::as_object)
            .expect("policy_example");
        let mut judged = 0;
        for (key, spec) in example {
            let (Some((tool, arg)), Some(spec)) = (key.split_once('.'), spec.as_str()) else {
                continue;
            };
            let Some(re) = spec
                .strip_prefix('^')
                .and_then(|s| s.split_once('$'))
                .map(|p| p.0)
            else {
                continue;
            };
            let rule: ArgRule = serde_json::from_value(serde_json::json!({
                "pattern": re, "no_leading_dash": spec.contains("not starting with '-'")
            }))
            .expect("rule from policy_example");
            for msg in messages(&case["input"]) {
                if msg.pointer("/params/name").and_then(Value::as_str) != Some(tool) {
                    continue;
                }
                let Some(value) = msg.pointer(&format!("/params/arguments/{arg}")) else {
                    continue;
                };
                let value_is_the_attack = arguments(msg).count() == 1;
                // A variant whose only deviation is an extra argument is the
                // schema check's job; the rule must let its value through.
                assert_eq!(
                    rule.check(value).is_err(),
                    value_is_the_attack,
                    "{}: {tool}.{arg} = {value}",
                    id(case)
                );
                judged += 1;
            }
        }
        assert!(judged > 0, "{}: nothing judged", id(case));
    }
}

#[test]
fn secrets_are_redacted_or_refused() {
    for case in of_category(&cases(), &["secrets"]) {
        for msg in messages(&case["input"]) {
            if let Some(result) = msg.get("result") {
                let mut redacted = result.clone();
                let kinds = redact_json(&mut redacted);
                assert!(!kinds.is_empty(), "{}: nothing redacted", id(case));
                assert!(
                    find_secrets_in_json(&redacted).is_empty(),
                    "{}: redaction incomplete",
                    id(case)
                );
                let (mut before, mut after) = (Vec::new(), Vec::new());
                all_strings(result, &mut before);
                all_strings(&redacted, &mut after);
                let after = after.join("\n");
                assert!(
                    !after.contains("-----BEGIN"),
                    "{}: key block left",
                    id(case)
                );
                // Every NAME=VALUE line whose NAME says key/token/secret lost its value.
                for line in before.iter().flat_map(|s| s.lines()) {
                    let Some((name, value)) = line.split_once('=') else {
                        continue;
                    };
                    if ["KEY", "TOKEN", "SECRET"]
                        .iter()
                        .any(|w| name.to_uppercase().contains(w))
                    {
                        assert!(!after.contains(value), "{}: {name} not redacted", id(case));
                    }
                }
            } else {
                let args = msg.pointer("/params/arguments").expect("arguments");
                assert!(
                    !find_secrets_in_json(args).is_empty(),
                    "{}: secret egress not found",
                    id(case)
                );
            }
        }
    }
}

/// Rug pulls: the first listing is clean, a later (drifted) one is poisoned.
/// Drift itself is the pin store's job; the scan must see the payload.
#[test]
fn drifted_definitions_are_flagged() {
    for case in of_category(&cases(), &["baseline"]) {
        let listings: Vec<Option<Severity>> = messages(&case["input"])
            .into_iter()
            .filter_map(|m| m.pointer("/result/tools").and_then(Value::as_array))
            .map(|tools| {
                tools
                    .iter()
                    .flat_map(|t| scan_definition(t, NONE))
                    .map(|f| f.severity)
                    .max()
            })
            .collect();
        assert!(listings.len() >= 2, "{}: expected two listings", id(case));
        assert!(
            listings[0] < Some(HOLD),
            "{}: first listing flagged",
            id(case)
        );
        assert!(
            listings[1..].iter().any(|s| *s >= Some(Severity::High)),
            "{}: payload missed",
            id(case)
        );
    }
}

fn assert_held(case: &Value, what: &str, sev: Option<Severity>) {
    match action(case) {
        a if a.starts_with("pass") => assert!(
            sev < Some(Severity::High),
            "{}: {what} must pass, got {sev:?}",
            id(case)
        ),
        _ => assert!(sev >= Some(HOLD), "{}: {what} must be flagged", id(case)),
    }
}

#[test]
fn poisoning_shadowing_and_result_injection_are_flagged() {
    for case in of_category(&cases(), &["poisoning", "shadowing", "result_injection"]) {
        let input = &case["input"];
        let mut judged = 0;
        if let Some(servers) = input.get("servers").and_then(Value::as_object) {
            for (server, spec) in servers {
                let others: Vec<&str> = servers
                    .iter()
                    .filter(|(s, _)| *s != server)
                    .flat_map(|(_, o)| o["tools"].as_array().into_iter().flatten())
                    .filter_map(|t| t["name"].as_str())
                    .collect();
                let findings: Vec<_> = spec["tools"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|t| scan_definition(t, &others))
                    .collect();
                let high = findings.iter().any(|f| f.severity >= Severity::High);
                assert_eq!(
                    high,
                    server.contains("untrusted"),
                    "{}: server {server}: {findings:?}",
                    id(case)
                );
                judged += 1;
            }
        }
        for msg in messages(input) {
            if msg.get("method").is_some() && msg.get("result").is_none() {
                // Outgoing call: its arguments are the scanned text (TPA-04).
                if case["direction"] == "client->proxy" {
                    let f: Vec<_> = arguments(msg)
                        .filter_map(|(_, v)| v.as_str())
                        .flat_map(|s| scan_text(s, NONE))
                        .collect();
                    assert_held(case, "arguments", max_severity(&f));
                    judged += 1;
                }
                continue;
            }
            for tool in msg
                .pointer("/result/tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                assert_held(
                    case,
                    "definition",
                    max_severity(&scan_definition(tool, NONE)),
                );
                if action(case) == "modify" {
                    let desc = tool["description"].as_str().unwrap_or("");
                    let clean = strip_terminal_escapes(desc).expect("escapes to strip");
                    assert!(!clean.contains('\u{1b}'), "{}", id(case));
                }
                judged += 1;
            }
            for item in msg
                .pointer("/result/content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let f = scan_text(item["text"].as_str().unwrap_or(""), NONE);
                assert_held(case, "result text", max_severity(&f));
                judged += 1;
            }
        }
        assert!(judged > 0, "{}: nothing judged", id(case));
    }
}

#[test]
fn sampling_and_elicitation_requests_are_judged() {
    for case in of_category(&cases(), &["sampling", "elicitation"]) {
        let alert = case
            .pointer("/expected/alert")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for msg in messages(&case["input"]) {
            let params = &msg["params"];
            let findings = if case["category"] == "elicitation" {
                scan_elicitation(params)
            } else {
                let mut texts: Vec<&str> = params["systemPrompt"].as_str().into_iter().collect();
                for m in params["messages"].as_array().into_iter().flatten() {
                    texts.extend(m.pointer("/content/text").and_then(Value::as_str));
                }
                texts.iter().flat_map(|t| scan_text(t, NONE)).collect()
            };
            let flagged = max_severity(&findings) >= Some(HOLD);
            assert_eq!(flagged, alert, "{}: {findings:?}", id(case));
        }
    }
}
