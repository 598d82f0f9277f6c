//! Every stdio-capable `signature` and `replay` case of the attack corpus through `wrap` with
//! `signatures.mode = "enforce"`, signing with the test-vector client key; plus audit mode.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use mcp_warden::sig::{keys, message_scheme, new_nonce};
use serde_json::{json, Value};
use support::{Options, Wrapped};

fn vectors() -> Value {
    serde_json::from_slice(
        &std::fs::read(support::fixture("vectors/signatures.json")).expect("vectors"),
    )
    .expect("json")
}

fn corpus_cases(categories: &[&str]) -> Vec<Value> {
    let all: Vec<Value> = serde_json::from_slice(
        &std::fs::read(support::fixture("attacks/corpus.json")).expect("corpus"),
    )
    .expect("json");
    all.into_iter()
        .filter(|c| categories.contains(&c["category"].as_str().unwrap_or("")))
        .filter(|c| matches!(c["transport"].as_str(), Some("stdio") | Some("both")))
        .collect()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn config(mode: &str) -> String {
    let v = vectors();
    format!(
        "[signatures]\nmode = \"{mode}\"\n\n[[identity.trusted_keys]]\nname = \"client-1\"\npublic_key = \"{}\"\nrole = \"client\"\n",
        v["keys"]["client"]["public_key"].as_str().expect("pub")
    )
}

fn client_key() -> ed25519_dalek::SigningKey {
    keys::signing_key_from_pem(
        vectors()["keys"]["client"]["private_pem"]
            .as_str()
            .expect("pem"),
    )
    .expect("key")
}

fn sign(msg: &Value, ts: i64) -> Value {
    let line = message_scheme::sign(
        msg.to_string().as_bytes(),
        &client_key(),
        "echo",
        ts,
        &new_nonce(),
    )
    .expect("sign");
    serde_json::from_str(&line).expect("json")
}

/// Resolve `{{now}}`-style placeholders and forge what the case describes as a signature: a
/// real signature, but over a different message (another id), so it cannot verify.
fn materialise(msg: &Value) -> Value {
    let mut m = msg.clone();
    fill(&mut m, msg);
    m
}

fn fill(v: &mut Value, whole: &Value) {
    match v {
        Value::String(s) if s == "{{now}}" => *v = json!(now()),
        Value::String(s) if s.starts_with("{{") => {
            let mut other = whole.clone();
            other["id"] = json!(whole["id"].as_i64().unwrap_or(0) + 1000);
            if let Some(p) = other["params"].as_object_mut() {
                p.remove("_meta");
            }
            let signed = sign(&other, now());
            *v = signed["params"]["_meta"]["dev.mcp-warden/signature"]["sig"].clone();
        }
        Value::Object(map) => map.values_mut().for_each(|x| fill(x, whole)),
        Value::Array(items) => items.iter_mut().for_each(|x| fill(x, whole)),
        _ => {}
    }
}

fn expect_refused(w: &mut Wrapped, msg: &Value, case: &Value) {
    let before = w.upstream().len();
    w.send(msg);
    let reply = w.recv();
    let expected = &case["expected"];
    assert_eq!(
        reply["error"]["code"], expected["jsonrpc_error_code"],
        "{}: {reply}",
        case["id"]
    );
    w.signed_ping("after-refusal");
    assert_eq!(
        w.upstream().len(),
        before + 1,
        "{}: refused message reached upstream",
        case["id"]
    );
    let audit = w.audit();
    let event = expected["audit_event"].as_str().expect("event");
    let rec = audit
        .iter()
        .find(|r| r["event"] == event)
        .unwrap_or_else(|| panic!("{}: no {event} record", case["id"]));
    assert_eq!(
        rec["alert"],
        expected["alert"].as_bool().unwrap_or(false),
        "{}: alert flag",
        case["id"]
    );
}

/// A signed, initialised session whose server also offers `tools` (answering with an empty
/// result), so that only the signature checks are in question.
fn signed_session_with(mode: &str, tools: &[&str]) -> Wrapped {
    let script: serde_json::Map<String, Value> = tools
        .iter()
        .map(|t| {
            (
                t.to_string(),
                json!([r#"{"jsonrpc":"2.0","id":{{id}},"result":{"content":[]}}"#]),
            )
        })
        .collect();
    let mut w = Wrapped::start(Options {
        config: Some(config(mode)),
        script: Some(Value::Object(script)),
        ..Default::default()
    });
    // initialize is checked too in enforce mode: sign it.
    w.send(&sign(
        &json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
        now(),
    ));
    assert_eq!(w.recv()["id"], "init");
    w.send(&sign(
        &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        now(),
    ));
    w.send(&sign(
        &json!({"jsonrpc":"2.0","id":"list","method":"tools/list"}),
        now(),
    ));
    assert!(w.recv()["result"]["tools"].is_array(), "signed tools/list");
    // A round trip, so everything so far is in the upstream's record before a case counts it.
    w.signed_ping("ready");
    w
}

fn signed_session(mode: &str) -> Wrapped {
    signed_session_with(mode, &[])
}

trait SignedPing {
    fn signed_ping(&mut self, id: &str);
}

impl SignedPing for Wrapped {
    /// A signed ping round trip (plain pings are refused in enforce mode).
    fn signed_ping(&mut self, id: &str) {
        self.send(&sign(
            &json!({"jsonrpc":"2.0","id":id,"method":"ping"}),
            now(),
        ));
        loop {
            let r = self.recv();
            if r["id"] == id {
                assert_eq!(r["result"], json!({}), "signed ping refused: {r}");
                return;
            }
        }
    }
}

#[test]
fn signature_and_replay_cases_in_enforce_mode() {
    let cases = corpus_cases(&["signature", "replay"]);
    assert!(cases.len() >= 3);
    for case in &cases {
        eprintln!("corpus case {}", case["id"]);
        let input = &case["input"];
        let stdio = input.get("stdio_variant").cloned();
        match (input["kind"].as_str(), case["category"].as_str()) {
            (_, Some("replay")) => {
                let msg = stdio.expect("stdio variant");
                let mut clean = msg.clone();
                clean["params"]
                    .as_object_mut()
                    .expect("params")
                    .remove("_meta");
                let signed = sign(&clean, now());
                let tool = clean["params"]["name"]
                    .as_str()
                    .unwrap_or("tool")
                    .to_owned();
                let mut w = signed_session_with("enforce", &[&tool]);
                w.send(&signed);
                let first = w.recv();
                assert!(
                    first.get("result").is_some(),
                    "{}: first use refused: {first}",
                    case["id"]
                );
                // Byte-identical replay of a request that is no longer in flight.
                expect_refused(&mut w, &signed, case);
            }
            (Some("jsonrpc"), _) => {
                for variant in input["variants"].as_array().expect("variants") {
                    let mut w = signed_session("enforce");
                    expect_refused(&mut w, &materialise(variant), case);
                }
            }
            (_, _) => {
                let msg = stdio.unwrap_or_else(|| panic!("{}: no stdio form", case["id"]));
                let mut w = signed_session("enforce");
                expect_refused(&mut w, &msg, case);
                // The same unsigned request in audit mode passes and is recorded.
                if let Some(audit_mode) = case["expected"].get("audit_mode_expected") {
                    let mut w = Wrapped::start(Options {
                        config: Some(config("audit")),
                        // The server offers the tool, so only the signature check is in question.
                        script: Some(json!({ msg["params"]["name"].as_str().unwrap_or("tool"):
                            [r#"{"jsonrpc":"2.0","id":{{id}},"result":{"content":[]}}"#] })),
                        ..Default::default()
                    });
                    w.initialize();
                    w.send(&msg);
                    assert!(
                        w.recv().get("result").is_some(),
                        "{}: audit mode must pass",
                        case["id"]
                    );
                    let event = audit_mode["audit_event"].as_str().expect("event");
                    assert!(
                        w.audit().iter().any(|r| r["event"] == event),
                        "{}: no {event} record",
                        case["id"]
                    );
                }
            }
        }
    }
}

#[test]
fn valid_signatures_pass_and_expired_or_foreign_ones_do_not() {
    let mut w = signed_session("enforce");
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"signed"}}});
    let signed = sign(&call, now());
    w.send(&signed);
    assert_eq!(w.recv()["result"]["content"][0]["text"], "signed");
    // The upstream received exactly the signed bytes.
    assert!(w
        .upstream()
        .iter()
        .any(|l| serde_json::from_slice::<Value>(l).ok().as_ref() == Some(&signed)));
    let audit = w.audit();
    assert!(
        audit
            .iter()
            .any(|r| r["kid"] == vectors()["keys"]["client"]["kid"]),
        "kid recorded"
    );

    let old = sign(
        &json!({"jsonrpc":"2.0","id":2,"method":"ping"}),
        now() - 301,
    );
    w.send(&old);
    assert_eq!(w.recv()["error"]["code"], -32011);
    let future = sign(
        &json!({"jsonrpc":"2.0","id":3,"method":"ping"}),
        now() + 3600,
    );
    w.send(&future);
    assert_eq!(w.recv()["error"]["code"], -32011);
    // Signed for another server: wrong audience.
    let other = message_scheme::sign(
        br#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#,
        &client_key(),
        "github",
        now(),
        &new_nonce(),
    )
    .expect("sign");
    w.send_raw(format!("{other}\n").as_bytes());
    assert_eq!(w.recv()["error"]["code"], -32010);
    // Signed by a key the proxy does not know.
    let stranger = keys::generate_signing_key();
    let unknown = message_scheme::sign(
        br#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#,
        &stranger,
        "echo",
        now(),
        &new_nonce(),
    )
    .expect("sign");
    w.send_raw(format!("{unknown}\n").as_bytes());
    assert_eq!(w.recv()["error"]["code"], -32010);
}

#[test]
fn the_sign_command_produces_what_the_proxy_accepts() {
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("client.pem");
    std::fs::write(
        &key,
        vectors()["keys"]["client"]["private_pem"]
            .as_str()
            .expect("pem"),
    )
    .expect("write");
    let mut child = std::process::Command::new(support::warden_bin())
        .args(["sign", "--key"])
        .arg(&key)
        .args(["--aud", "echo"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sign");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"cli"}}}"#)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let mut w = signed_session("enforce");
    w.send_raw(&out.stdout);
    assert_eq!(w.recv()["result"]["content"][0]["text"], "cli");
}
