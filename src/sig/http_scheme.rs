//! HTTP request scheme (SPEC §4): four `X-MCP-*` headers; the signature covers the raw body bytes,
//! so nothing is canonicalized and the body is forwarded as received.
//!
//! Signing input: `"mcp-http-sig-v1\n" + ts + "\n" + nonce + "\n" + audience + "\n" + body`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::sig::keys::kid_of;

pub const DOMAIN: &[u8] = b"mcp-http-sig-v1\n";
pub const HEADER_KEY_ID: &str = "X-MCP-Key-Id";
pub const HEADER_TIMESTAMP: &str = "X-MCP-Timestamp";
pub const HEADER_NONCE: &str = "X-MCP-Nonce";
pub const HEADER_SIGNATURE: &str = "X-MCP-Signature";

/// The four header values as sent (what [`sign`] returns and a transport reads).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpSigHeaders {
    pub key_id: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub signature: Option<String>,
}

/// Headers after parsing: the shape is valid; nothing is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSignature {
    pub kid: String,
    pub ts: i64,
    pub nonce: String,
    pub nonce_bytes: Vec<u8>,
    pub signature: Signature,
}

impl HttpSigHeaders {
    /// Reads the headers through `get(name)`, so any header map fits (names are passed in the
    /// canonical spelling; HTTP header lookup is case-insensitive). A transport must refuse a
    /// request that repeats one of these headers before calling this.
    pub fn from_lookup<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        let own = |name: &str| get(name).map(str::to_string);
        Self {
            key_id: own(HEADER_KEY_ID),
            timestamp: own(HEADER_TIMESTAMP),
            nonce: own(HEADER_NONCE),
            signature: own(HEADER_SIGNATURE),
        }
    }

    /// `(name, value)` pairs for the headers that are set.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            (HEADER_KEY_ID, &self.key_id),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce),
            (HEADER_SIGNATURE, &self.signature),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }

    /// `Ok(None)` when no signature header is present at all (unsigned); `Err` names what is
    /// wrong with a partial or malformed set.
    pub fn parse(&self) -> Result<Option<HttpSignature>, String> {
        let (kid, ts, nonce, sig) = match (&self.key_id, &self.timestamp, &self.nonce, &self.signature) {
            (None, None, None, None) => return Ok(None),
            (Some(k), Some(t), Some(n), Some(s)) => (k, t, n, s),
            _ => {
                return Err(format!(
                    "incomplete signature headers: {HEADER_KEY_ID}, {HEADER_TIMESTAMP}, {HEADER_NONCE} and {HEADER_SIGNATURE} are all required"
                ))
            }
        };
        let ts = parse_timestamp(ts)?;
        let nonce_bytes = crate::sig::parse_nonce(nonce)?;
        Ok(Some(HttpSignature {
            kid: kid.clone(),
            ts,
            nonce: nonce.clone(),
            nonce_bytes,
            signature: parse_signature(sig)?,
        }))
    }
}

/// Unix seconds in canonical decimal only. The input signs the header text; mcpsig.py re-prints
/// `int(ts)`, so accepting `+5`, `05` or ` 5` would make two spellings of one timestamp.
fn parse_timestamp(text: &str) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(ts) if ts.to_string() == text => Ok(ts),
        _ => Err(format!(
            "{HEADER_TIMESTAMP} must be unix seconds as a plain decimal integer"
        )),
    }
}

/// Standard padded base64 of exactly 64 bytes.
pub(crate) fn parse_signature(text: &str) -> Result<Signature, String> {
    let raw = STANDARD
        .decode(text)
        .map_err(|_| "signature is not standard base64".to_string())?;
    let raw: [u8; 64] = raw
        .as_slice()
        .try_into()
        .map_err(|_| format!("signature must be 64 bytes, got {}", raw.len()))?;
    Ok(Signature::from_bytes(&raw))
}

/// The exact bytes that are signed.
pub fn signing_input(ts: i64, nonce: &str, audience: &str, body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(DOMAIN.len() + 64 + audience.len() + body.len());
    input.extend_from_slice(DOMAIN);
    input.extend_from_slice(format!("{ts}\n{nonce}\n{audience}\n").as_bytes());
    input.extend_from_slice(body);
    input
}

/// Signs `body` for `audience`; returns all four header values.
pub fn sign(key: &SigningKey, audience: &str, body: &[u8], ts: i64, nonce: &str) -> HttpSigHeaders {
    let sig = key.sign(&signing_input(ts, nonce, audience, body));
    HttpSigHeaders {
        key_id: Some(kid_of(&key.verifying_key())),
        timestamp: Some(ts.to_string()),
        nonce: Some(nonce.to_string()),
        signature: Some(STANDARD.encode(sig.to_bytes())),
    }
}

/// Strict Ed25519 check of a parsed signature against `audience` and `body`. Clock, replay and
/// key role are the verifier's job.
pub fn verify(key: &VerifyingKey, parsed: &HttpSignature, audience: &str, body: &[u8]) -> bool {
    let input = signing_input(parsed.ts, &parsed.nonce, audience, body);
    key.verify_strict(&input, &parsed.signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9u8; 32])
    }

    const NONCE: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn sign_then_verify() {
        let headers = sign(&key(), "fs", b"{}", 100, NONCE);
        let parsed = headers.parse().unwrap().unwrap();
        assert_eq!(parsed.kid, kid_of(&key().verifying_key()));
        assert!(verify(&key().verifying_key(), &parsed, "fs", b"{}"));
        assert!(!verify(&key().verifying_key(), &parsed, "gh", b"{}"));
        assert!(!verify(&key().verifying_key(), &parsed, "fs", b"{} "));
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert!(!verify(&other, &parsed, "fs", b"{}"));
    }

    #[test]
    fn absent_partial_and_malformed_headers() {
        assert_eq!(HttpSigHeaders::default().parse(), Ok(None));
        let good = sign(&key(), "fs", b"{}", 100, NONCE);
        let mut partial = good.clone();
        partial.nonce = None;
        assert!(partial.parse().is_err());
        // SIG-01 variants of X-MCP-Signature, plus timestamp and nonce spellings.
        for bad in ["", "AAAA", "alg=none", "%%%"] {
            let mut h = good.clone();
            h.signature = Some(bad.to_string());
            assert!(h.parse().is_err(), "signature {bad:?}");
        }
        for bad in ["", "+100", "0100", " 100", "1e2", "99999999999999999999"] {
            let mut h = good.clone();
            h.timestamp = Some(bad.to_string());
            assert!(h.parse().is_err(), "timestamp {bad:?}");
        }
        for bad in [
            "n-7f3a",
            "AAAAAAAAAAAAAAAAAAAAAA==",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "AAAA+AAAAAAAAAAAAAAAAA",
        ] {
            let mut h = good.clone();
            h.nonce = Some(bad.to_string());
            assert!(h.parse().is_err(), "nonce {bad:?}");
        }
    }

    #[test]
    fn zero_signature_fails_strict_verification() {
        let mut h = sign(&key(), "fs", b"{}", 100, NONCE);
        h.signature = Some(STANDARD.encode([0u8; 64]));
        let parsed = h.parse().unwrap().unwrap();
        assert!(!verify(&key().verifying_key(), &parsed, "fs", b"{}"));
    }

    #[test]
    fn lookup_reads_header_maps() {
        let h = sign(&key(), "fs", b"{}", 100, NONCE);
        let pairs = h.pairs();
        assert_eq!(pairs.len(), 4);
        let back = HttpSigHeaders::from_lookup(|name| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        });
        assert_eq!(back, h);
    }
}
