//! Data-driven agreement with the reference: every case in `fixtures/vectors/signatures.json`
//! (copied from `shared/vectors/`, produced by `mcpsig.py vectors`), and, when python3 with
//! `cryptography` and `rfc8785` is installed, a live round trip with `mcpsig.py` both ways.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::sig::http_scheme::{self, HttpSigHeaders};
use crate::sig::keys::{self, KeyRole, TrustedKeys};
use crate::sig::message_scheme::{self, META_KEY};
use crate::sig::{jcs, Expect, ManualClock, Outcome, Verifier, VerifierConfig};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/vectors/signatures.json"
);

fn vectors() -> Value {
    let text = std::fs::read_to_string(VECTORS).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn signing_key(v: &Value, name: &str) -> ed25519_dalek::SigningKey {
    keys::signing_key_from_pem(v["keys"][name]["private_pem"].as_str().unwrap()).unwrap()
}

fn role_of(name: &str) -> KeyRole {
    if name == "server" {
        KeyRole::Server
    } else {
        KeyRole::Client
    }
}

/// A fresh verifier at the vectors' timestamp, trusting both vector keys.
fn verifier(v: &Value, ts: i64) -> Verifier {
    let mut trusted = TrustedKeys::new();
    for name in ["client", "server"] {
        let public = v["keys"][name]["public_key"].as_str().unwrap();
        trusted.insert_text(name, role_of(name), public).unwrap();
    }
    let config = VerifierConfig {
        mode: crate::sig::Mode::Enforce,
        ..VerifierConfig::default()
    };
    Verifier::new(config, Arc::new(trusted), Arc::new(ManualClock::new(ts)))
}

#[test]
fn vector_keys() {
    let v = vectors();
    for name in ["client", "server"] {
        let entry = &v["keys"][name];
        let key = signing_key(&v, name);
        let public = key.verifying_key();
        assert_eq!(
            keys::public_key_to_string(&public),
            entry["public_key"].as_str().unwrap()
        );
        assert_eq!(keys::kid_of(&public), entry["kid"].as_str().unwrap());
        // Our PEM writer emits the same bytes as python cryptography.
        assert_eq!(
            keys::signing_key_to_pem(&key).unwrap().as_str(),
            entry["private_pem"].as_str().unwrap()
        );
    }
}

#[test]
fn every_http_vector() {
    let v = vectors();
    let cases = v["http"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (aud, body) = (
            case["aud"].as_str().unwrap(),
            case["body"].as_str().unwrap().as_bytes(),
        );
        let h = &case["headers"];
        let headers = HttpSigHeaders::from_lookup(|n| h.get(n).and_then(Value::as_str));
        let parsed = headers.parse().unwrap().unwrap();
        let valid = case["valid"].as_bool().unwrap();
        let client = signing_key(&v, "client");
        assert_eq!(
            http_scheme::verify(&client.verifying_key(), &parsed, aud, body),
            valid,
            "{name}"
        );
        let outcome = verifier(&v, parsed.ts).check_http(
            &headers,
            body,
            Expect {
                role: KeyRole::Client,
                audience: aud,
            },
        );
        assert_eq!(outcome.is_valid(), valid, "{name}: {outcome:?}");
        if valid {
            // Ed25519 is deterministic: re-signing reproduces the vector's headers exactly.
            assert_eq!(
                http_scheme::sign(&client, aud, body, parsed.ts, &parsed.nonce),
                headers,
                "{name}"
            );
        } else {
            assert_eq!(outcome.code(), Some(-32010), "{name}");
        }
    }
}

#[test]
fn every_msg_vector() {
    let v = vectors();
    let cases = v["msg"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let key_name = case["key"].as_str().unwrap();
        let (aud, message) = (case["aud"].as_str().unwrap(), &case["message"]);
        let valid = case["valid"].as_bool().unwrap();
        let key = signing_key(&v, key_name);
        let checked = message_scheme::verify(message, &key.verifying_key(), Some(aud));
        assert_eq!(checked.is_ok(), valid, "{name}: {checked:?}");
        let parsed = message_scheme::extract(message).unwrap().unwrap();
        let expect = Expect {
            role: role_of(key_name),
            audience: aud,
        };
        let outcome = verifier(&v, parsed.ts).check_message(message, expect);
        assert_eq!(outcome.is_valid(), valid, "{name}: {outcome:?}");
        if valid {
            // Strip our entry and re-sign with the same ts and nonce: identical message.
            let mut unsigned = message.clone();
            let holder = if message.get("method").is_some() {
                "params"
            } else {
                "result"
            };
            unsigned[holder]["_meta"]
                .as_object_mut()
                .unwrap()
                .remove(META_KEY);
            let resigned =
                message_scheme::sign_value(&unsigned, &key, aud, parsed.ts, &parsed.nonce).unwrap();
            assert_eq!(&resigned, message, "{name}");
        } else {
            assert!(
                matches!(outcome, Outcome::Invalid(_)),
                "{name}: {outcome:?}"
            );
            assert_eq!(outcome.code(), Some(-32010), "{name}");
        }
    }
}

#[test]
fn non_canonical_s_is_refused() {
    // SIG-01 variant: s + L verifies under lax rules; verify_strict must refuse it.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let v = vectors();
    let case = &v["http"][0];
    let h = &case["headers"];
    let mut headers = HttpSigHeaders::from_lookup(|n| h.get(n).and_then(Value::as_str));
    let mut sig = STANDARD
        .decode(headers.signature.as_deref().unwrap())
        .unwrap();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        sig[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    headers.signature = Some(STANDARD.encode(&sig));
    let parsed = headers.parse().unwrap().unwrap();
    let key = signing_key(&v, "client").verifying_key();
    assert!(!http_scheme::verify(
        &key,
        &parsed,
        "filesystem",
        case["body"].as_str().unwrap().as_bytes()
    ));
}

// === live cross-check with mcpsig.py ===

fn mcpsig() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("MCPSIG_PY").map(PathBuf::from),
        // A copy of the reference tool ships in fixtures/ so the check runs without ../shared.
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/tools/mcpsig.py"
        ))),
    ];
    let script = candidates.into_iter().flatten().find(|p| p.is_file());
    let python_ok = Command::new(python_bin())
        .args(["-c", "import cryptography, rfc8785"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match script {
        Some(script) if python_ok => Some(script),
        _ => {
            eprintln!(
                "NOTE: skipping the mcpsig.py cross-check: needs python3 with `cryptography` and `rfc8785` \
                 (pip install cryptography rfc8785) and mcpsig.py at fixtures/tools/ or $MCPSIG_PY"
            );
            None
        }
    }
}

/// The peers' venv (installed by scripts/setup-peers.sh with `cryptography` and `rfc8785`)
/// when present, else the system python3.
fn python_bin() -> PathBuf {
    let venv = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.venv-peers/bin/python"
    ));
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Runs `python args…` with `stdin`; returns (success, stdout).
fn python(args: &[&str], stdin: &[u8]) -> (bool, String) {
    let mut child = Command::new(python_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn cross_check_with_mcpsig_py() {
    let Some(script) = mcpsig() else { return };
    let script = script.to_str().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "mcpsig-xcheck-{}-{}",
        std::process::id(),
        crate::sig::new_nonce()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let pem_path = dir.join("key.pem");
    let key = keys::generate_signing_key();
    std::fs::write(
        &pem_path,
        keys::signing_key_to_pem(&key).unwrap().as_bytes(),
    )
    .unwrap();
    let pem = pem_path.to_str().unwrap();
    let public = keys::public_key_to_string(&key.verifying_key());
    let kid = keys::kid_of(&key.verifying_key());

    // Our PEM loads in python and both agree on the public key and kid.
    let (ok, out) = python(&[script, "pub", pem], b"");
    assert!(ok);
    assert_eq!(out.trim(), format!("{public} {kid}"));

    let message = json!({"jsonrpc":"2.0","id":"x-1","method":"tools/call","params":{"name":"echo",
        "arguments":{"text":"h\u{e9}llo \u{1f600} \"q\" \\ \u{1}\u{7f}\u{2028}","n":[0.1,1e21,1e-7,-0.0,123456789,1.5]}}});
    let nonce = crate::sig::new_nonce();
    let (ts, ts_text) = (1_767_225_600, "1767225600");

    // python signs -> Rust verifies (message scheme).
    let (ok, signed) = python(
        &[
            script, "sign-msg", pem, "fs", "--ts", ts_text, "--nonce", &nonce,
        ],
        message.to_string().as_bytes(),
    );
    assert!(ok);
    let signed: Value = serde_json::from_str(&signed).unwrap();
    assert!(message_scheme::verify(&signed, &key.verifying_key(), Some("fs")).is_ok());

    // Rust signs -> python verifies; a tampered copy fails there too.
    let ours =
        message_scheme::sign(message.to_string().as_bytes(), &key, "fs", ts, &nonce).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&ours).unwrap(), signed);
    assert!(
        python(
            &[script, "verify-msg", &public, "--aud", "fs"],
            ours.as_bytes()
        )
        .0
    );
    assert!(
        !python(
            &[script, "verify-msg", &public, "--aud", "gh"],
            ours.as_bytes()
        )
        .0
    );
    let tampered = ours.replace("echo", "exec");
    assert!(!python(&[script, "verify-msg", &public], tampered.as_bytes()).0);

    // HTTP scheme both ways.
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let (ok, out) = python(
        &[
            script,
            "sign-http",
            pem,
            "fs",
            "--ts",
            ts_text,
            "--nonce",
            &nonce,
        ],
        body,
    );
    assert!(ok);
    let lines: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once(": ")).collect();
    let headers =
        HttpSigHeaders::from_lookup(|n| lines.iter().find(|(k, _)| *k == n).map(|(_, v)| *v));
    assert_eq!(headers, http_scheme::sign(&key, "fs", body, ts, &nonce));
    let sig = headers.signature.clone().unwrap();
    assert!(
        python(
            &[script, "verify-http", &public, "fs", ts_text, &nonce, &sig],
            body
        )
        .0
    );
    assert!(
        !python(
            &[script, "verify-http", &public, "gh", ts_text, &nonce, &sig],
            body
        )
        .0
    );

    // JCS agrees with python rfc8785 on awkward numbers and strings.
    let mut doubles = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while doubles.len() < 2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = f64::from_bits(x);
        if f.is_finite() {
            doubles.push(json!(f));
        }
        doubles.push(json!((x % 1_000_000_007) as f64 / 1000.0));
        // Few fraction bits: exact ties between two shortest spellings (ties go to even).
        doubles.push(json!((x >> 11) as f64 / (1u64 << (x % 12)) as f64));
    }
    // Long decimal literals exercise the parser too (python's float() is correctly rounded).
    let literals: Vec<String> = (0..2000u64)
        .map(|i| {
            let d = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 1;
            format!("{}.{}e{}", d % 9 + 1, d, (i % 40) as i64 - 20)
        })
        .collect();
    let doc = json!({"doubles": doubles, "\u{fb33}": 1, "\u{1f600}": 2, "\r": 3, "é": "\u{0}\u{1f}\u{7f}",
        "ints": [9_007_199_254_740_991_i64, -9_007_199_254_740_991_i64, 0, -1]});
    let text = format!("[{},[{}]]", doc, literals.join(","));
    let (ok, py_jcs) = python(
        &["-c", "import sys, json, rfc8785; sys.stdout.write(rfc8785.dumps(json.load(sys.stdin)).decode())"],
        text.as_bytes(),
    );
    assert!(ok);
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        String::from_utf8(jcs::to_vec(&parsed).unwrap()).unwrap(),
        py_jcs
    );
    // Both refuse integers beyond 2^53 - 1.
    assert!(!python(&["-c", "import rfc8785; rfc8785.dumps(2**53)"], b"").0);
    assert!(jcs::to_vec(&json!(9_007_199_254_740_992_u64)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
