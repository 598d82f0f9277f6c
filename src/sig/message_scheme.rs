//! Message scheme (SPEC §4): the signature rides inside the JSON-RPC message, at
//! `params._meta["dev.mcp-warden/signature"]` for requests and notifications (`params` is added if
//! absent) or `result._meta[...]` for successful responses, as
//! `{"v":1,"kid","ts","nonce","aud","sig"}`. `sig` signs
//! `"mcp-msg-sig-v1\n" + JCS(message with that object present but its "sig" member removed)`,
//! so id, method and every argument are covered.
//!
//! Downgrades (corpus SIG-06): only that exact key in that exact place is read. A stripped
//! signature, one moved under a reserved `_meta` prefix (`modelcontextprotocol.io/…`, `mcp…`) or
//! another holder reads as *missing*, which enforce mode refuses like any unsigned message.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{json, Map, Value};

use crate::sig::jcs::{self, JcsError};
use crate::sig::keys::kid_of;

pub const DOMAIN: &[u8] = b"mcp-msg-sig-v1\n";
pub const META_KEY: &str = "dev.mcp-warden/signature";
/// The only scheme version.
pub const VERSION: u64 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MsgSigError {
    #[error("message is not valid JSON: {0}")]
    Json(String),
    #[error("only requests, notifications and successful responses can be signed")]
    NotSignable,
    #[error("malformed {META_KEY}: {0}")]
    Malformed(String),
    #[error("no {META_KEY} signature in the message")]
    Missing,
    #[error("signature key id {found} is not the expected key {expected}")]
    WrongKey { found: String, expected: String },
    #[error("signature audience {found:?} is not {expected:?}")]
    WrongAudience { found: String, expected: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("cannot canonicalize message: {0}")]
    Jcs(#[from] JcsError),
}

/// A well-formed signature object read from a message; nothing is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSignature {
    pub kid: String,
    pub ts: i64,
    pub nonce: String,
    pub nonce_bytes: Vec<u8>,
    pub aud: String,
    pub signature: Signature,
}

/// Which member of the message holds `_meta`: `params` for anything with a method, else `result`
/// (same rule as mcpsig.py's `_holder`). Errors and garbage have no holder.
fn holder_key(message: &Map<String, Value>) -> Option<&'static str> {
    if message.contains_key("method") {
        Some("params")
    } else if message.contains_key("result") {
        Some("result")
    } else {
        None
    }
}

/// `"mcp-msg-sig-v1\n" + JCS(message without the signature's "sig" member)`.
pub fn signing_input(message: &Value) -> Result<Vec<u8>, MsgSigError> {
    let holder = message
        .as_object()
        .and_then(holder_key)
        .ok_or(MsgSigError::NotSignable)?;
    let mut input = DOMAIN.to_vec();
    input.extend(jcs::to_vec_omitting(
        message,
        &[holder, "_meta", META_KEY, "sig"],
    )?);
    Ok(input)
}

/// Returns a signed copy of `message`. Any signature object already there is replaced. Use
/// [`crate::sig::new_nonce`] for `nonce`; this does not police it so tests can forge bad ones.
pub fn sign_value(
    message: &Value,
    key: &SigningKey,
    aud: &str,
    ts: i64,
    nonce: &str,
) -> Result<Value, MsgSigError> {
    let mut signed = message.clone();
    let object = signed.as_object_mut().ok_or(MsgSigError::NotSignable)?;
    let holder = holder_key(object).ok_or(MsgSigError::NotSignable)?;
    let meta = object
        .entry(holder)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or(MsgSigError::NotSignable)?
        .entry("_meta")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| MsgSigError::Malformed(format!("{holder}._meta is not an object")))?;
    meta.insert(
        META_KEY.to_string(),
        json!({"v": VERSION, "kid": kid_of(&key.verifying_key()), "ts": ts, "nonce": nonce, "aud": aud}),
    );
    let sig = key.sign(&signing_input(&signed)?);
    // Just inserted above; an error here would mean a bug, and must not yield an unsigned message.
    let entry = signed
        .get_mut(holder)
        .and_then(|h| h.get_mut("_meta"))
        .and_then(|m| m.get_mut(META_KEY))
        .and_then(Value::as_object_mut)
        .ok_or(MsgSigError::NotSignable)?;
    entry.insert(
        "sig".to_string(),
        Value::String(STANDARD.encode(sig.to_bytes())),
    );
    Ok(signed)
}

/// Signs one JSON message given as bytes and returns it as one-line JSON (re-serialized: the
/// message changed, so SPEC §2's exact-bytes rule does not apply).
pub fn sign(
    message: &[u8],
    key: &SigningKey,
    aud: &str,
    ts: i64,
    nonce: &str,
) -> Result<String, MsgSigError> {
    let value: Value =
        serde_json::from_slice(message).map_err(|e| MsgSigError::Json(e.to_string()))?;
    let signed = sign_value(&value, key, aud, ts, nonce)?;
    serde_json::to_string(&signed).map_err(|e| MsgSigError::Json(e.to_string()))
}

/// Reads the signature object. `Ok(None)`: the message carries none where one belongs.
pub fn extract(message: &Value) -> Result<Option<MessageSignature>, MsgSigError> {
    let Some(entry) = message
        .as_object()
        .and_then(|m| holder_key(m).and_then(|h| m.get(h)))
        .and_then(|holder| holder.get("_meta"))
        .and_then(|meta| meta.get(META_KEY))
    else {
        return Ok(None);
    };
    let entry = entry
        .as_object()
        .ok_or_else(|| MsgSigError::Malformed("not an object".into()))?;
    let text = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| MsgSigError::Malformed(format!("\"{name}\" must be a string")))
    };
    // Stricter than mcpsig.py (which also takes 1.0 or true): one spelling, one meaning.
    if entry.get("v").and_then(Value::as_u64) != Some(VERSION) {
        return Err(MsgSigError::Malformed(format!(
            "\"v\" must be the integer {VERSION}"
        )));
    }
    let ts = entry.get("ts").and_then(Value::as_i64).ok_or_else(|| {
        MsgSigError::Malformed("\"ts\" must be unix seconds as an integer".into())
    })?;
    let nonce = text("nonce")?;
    let nonce_bytes = crate::sig::parse_nonce(nonce).map_err(MsgSigError::Malformed)?;
    let signature =
        crate::sig::http_scheme::parse_signature(text("sig")?).map_err(MsgSigError::Malformed)?;
    Ok(Some(MessageSignature {
        kid: text("kid")?.to_string(),
        ts,
        nonce: nonce.to_string(),
        nonce_bytes,
        aud: text("aud")?.to_string(),
        signature,
    }))
}

/// Strict Ed25519 check of an extracted signature against `key` (kid and audience are the
/// caller's business; see [`verify`]).
pub fn verify_with(message: &Value, parsed: &MessageSignature, key: &VerifyingKey) -> bool {
    match signing_input(message) {
        Ok(input) => key.verify_strict(&input, &parsed.signature).is_ok(),
        Err(_) => false,
    }
}

/// What `mcpsig.py verify-msg` checks: present, well-formed, made by `key`, for `aud` if given,
/// and the signature verifies. No clock or replay checks.
pub fn verify(
    message: &Value,
    key: &VerifyingKey,
    aud: Option<&str>,
) -> Result<MessageSignature, MsgSigError> {
    let parsed = extract(message)?.ok_or(MsgSigError::Missing)?;
    let expected = kid_of(key);
    if parsed.kid != expected {
        return Err(MsgSigError::WrongKey {
            found: parsed.kid,
            expected,
        });
    }
    if let Some(aud) = aud {
        if parsed.aud != aud {
            return Err(MsgSigError::WrongAudience {
                found: parsed.aud,
                expected: aud.to_string(),
            });
        }
    }
    if !verify_with(message, &parsed, key) {
        return Err(MsgSigError::BadSignature);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "AgICAgICAgICAgICAgICAg";

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5u8; 32])
    }

    fn call() -> Value {
        json!({"jsonrpc":"2.0","id":33,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/workspace/a.txt","content":"x"}}})
    }

    #[test]
    fn request_response_and_notification_round_trip() {
        let pk = key().verifying_key();
        for msg in [
            call(),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[],"_meta":{"other":1}}}),
        ] {
            let signed = sign_value(&msg, &key(), "fs", 100, NONCE).unwrap();
            let parsed = verify(&signed, &pk, Some("fs")).unwrap();
            assert_eq!((parsed.ts, parsed.aud.as_str()), (100, "fs"));
            assert!(matches!(
                verify(&signed, &pk, Some("gh")),
                Err(MsgSigError::WrongAudience { .. })
            ));
        }
    }

    #[test]
    fn bytes_in_one_line_out() {
        let text = sign(
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            &key(),
            "fs",
            1,
            NONCE,
        )
        .unwrap();
        assert!(!text.contains('\n'));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(verify(&value, &key().verifying_key(), None).is_ok());
        assert!(matches!(
            sign(b"{", &key(), "fs", 1, NONCE),
            Err(MsgSigError::Json(_))
        ));
    }

    #[test]
    fn errors_and_garbage_cannot_be_signed() {
        for msg in [
            json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}),
            json!([1]),
            json!("x"),
        ] {
            assert_eq!(
                sign_value(&msg, &key(), "fs", 1, NONCE),
                Err(MsgSigError::NotSignable)
            );
            assert_eq!(extract(&msg), Ok(None));
        }
    }

    #[test]
    fn id_and_method_are_covered() {
        let signed = sign_value(&call(), &key(), "fs", 100, NONCE).unwrap();
        for (field, value) in [("id", json!(34)), ("method", json!("tools/list"))] {
            let mut changed = signed.clone();
            changed[field] = value;
            assert_eq!(
                verify(&changed, &key().verifying_key(), None),
                Err(MsgSigError::BadSignature)
            );
        }
    }

    #[test]
    fn downgrades_read_as_missing() {
        let signed = sign_value(&call(), &key(), "fs", 100, NONCE).unwrap();
        let entry = signed["params"]["_meta"][META_KEY].clone();
        let mut stripped = signed.clone();
        stripped["params"]["_meta"] = json!({});
        let mut reserved = signed.clone();
        reserved["params"]["_meta"] = json!({ "modelcontextprotocol.io/sig": entry.clone() });
        let mut mcp_prefix = signed.clone();
        mcp_prefix["params"]["_meta"] = json!({ "mcp/dev.mcp-warden/signature": entry.clone() });
        let mut top_level = call();
        top_level["_meta"] = json!({ META_KEY: entry });
        for msg in [stripped, reserved, mcp_prefix, top_level] {
            assert_eq!(extract(&msg), Ok(None), "{msg}");
        }
    }

    #[test]
    fn malformed_entries() {
        let signed = sign_value(&call(), &key(), "fs", 100, NONCE).unwrap();
        let cases = [
            ("v", json!(2)),
            ("v", json!(1.0)),
            ("ts", json!("100")),
            ("nonce", json!("n1")),
            ("sig", json!("AAAA")),
            ("kid", json!(7)),
        ];
        for (field, value) in cases {
            let mut bad = signed.clone();
            bad["params"]["_meta"][META_KEY][field] = value;
            assert!(
                matches!(extract(&bad), Err(MsgSigError::Malformed(_))),
                "{field}"
            );
        }
        let mut not_object = signed.clone();
        not_object["params"]["_meta"][META_KEY] = json!("sig");
        assert!(matches!(
            extract(&not_object),
            Err(MsgSigError::Malformed(_))
        ));
    }
}
