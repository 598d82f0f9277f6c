//! The modern era's approval round (MRTR, 2026-07-28): the `requestState` the proxy hands the
//! client with its `input_required` answer, and its check when the client retries.
//!
//! The state is opaque to the client but must not be forgeable by it: an HMAC-SHA256, under a
//! key random per process, over the call's digest (method, tool, JCS of the arguments), the
//! session, an expiry and a nonce. A state minted for one call cannot approve another (other
//! arguments → other digest), an old one expires, and each nonce is spent once
//! ([`Spent`]), so one approval runs one call.

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

const PREFIX: &str = "mcpw1";

/// The per-process MAC key (random: a state does not outlive the proxy that minted it).
fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        crate::session::fill_random(&mut k);
        k
    })
}

/// HMAC-SHA256 (RFC 2104) — a few lines over `sha2` rather than another dependency.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The digest a state is bound to: method, tool and the JCS of the arguments (key order and
/// number spelling do not matter; any changed value does).
pub fn call_digest(method: &str, tool: &str, arguments: Option<&Value>) -> String {
    let args = arguments
        .and_then(|a| crate::sig::jcs::to_vec(a).ok())
        .unwrap_or_else(|| b"null".to_vec());
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(tool.as_bytes());
    h.update([0]);
    h.update(&args);
    hex::encode(h.finalize())
}

fn mac_input(digest: &str, session: &str, expires: u64, nonce: &str) -> String {
    format!("mcp-warden-mrtr-v1\n{digest}\n{session}\n{expires}\n{nonce}")
}

/// Mint a state for this call, valid until `expires` (unix seconds).
pub fn seal(digest: &str, session: &str, expires: u64) -> String {
    let nonce = crate::session::random_id();
    let mac = hmac_sha256(
        key(),
        mac_input(digest, session, expires, &nonce).as_bytes(),
    );
    format!("{PREFIX}.{expires}.{nonce}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// Whether a `requestState` looks like one of ours (else it is the server's own).
pub fn is_ours(state: &str) -> bool {
    state.starts_with(PREFIX) && state.as_bytes().get(PREFIX.len()) == Some(&b'.')
}

/// Why a state was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bad {
    Malformed,
    /// The MAC does not match: tampered, minted for another call or session, or by another proxy.
    Mismatch,
    Expired,
    Replayed,
}

impl Bad {
    pub fn reason(&self) -> &'static str {
        match self {
            Bad::Malformed => "the requestState is not one this proxy issued",
            Bad::Mismatch => "the requestState does not match this call (tampered, or issued for other arguments, another tool or another session)",
            Bad::Expired => "the requestState has expired; ask again",
            Bad::Replayed => "the requestState was already used; each approval runs one call",
        }
    }
}

/// Check a state for this call at time `now`; returns its nonce (to spend) when valid.
pub fn open(state: &str, digest: &str, session: &str, now: u64) -> Result<String, Bad> {
    let mut parts = state.split('.');
    let (Some(PREFIX), Some(exp), Some(nonce), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Bad::Malformed);
    };
    let expires: u64 = exp.parse().map_err(|_| Bad::Malformed)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| Bad::Malformed)?;
    let want = hmac_sha256(key(), mac_input(digest, session, expires, nonce).as_bytes());
    // Constant time (`subtle`): no early exit on the first differing byte.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        mac.as_slice(),
        want.as_slice(),
    )) {
        return Err(Bad::Mismatch);
    }
    if now > expires {
        return Err(Bad::Expired);
    }
    Ok(nonce.to_owned())
}

/// Nonces of states already used, until they expire. Bounded: when full of live nonces it
/// refuses (fail closed) rather than forget one.
#[derive(Debug, Default)]
pub struct Spent(HashMap<String, u64>);

const MAX_SPENT: usize = 4096;

impl Spent {
    /// Spend `nonce` (valid until `expires`); `Err` if it was spent before or no room is left.
    pub fn spend(&mut self, nonce: String, expires: u64, now: u64) -> Result<(), Bad> {
        if self.0.contains_key(&nonce) {
            return Err(Bad::Replayed);
        }
        if self.0.len() >= MAX_SPENT {
            self.0.retain(|_, e| *e >= now);
            if self.0.len() >= MAX_SPENT {
                return Err(Bad::Replayed);
            }
        }
        self.0.insert(nonce, expires);
        Ok(())
    }
}

/// What a stateless `serve` route (modern era: a pipeline per request, no session) keeps of its
/// approval rounds across requests: the nonces spent, and the calls approved moments ago by
/// binding (key or route) and digest. One per process, like the MAC key: nonces are random
/// and unique, so one set serves every route. Both bounded.
#[derive(Default)]
pub struct Shared {
    pub spent: Spent,
    pub approved: HashMap<String, u64>,
}

pub fn shared() -> &'static std::sync::Mutex<Shared> {
    static SHARED: OnceLock<std::sync::Mutex<Shared>> = OnceLock::new();
    SHARED.get_or_init(Default::default)
}

/// The expiry written in a state (for [`Spent`]); 0 when unreadable.
pub fn expiry(state: &str) -> u64 {
    state
        .split('.')
        .nth(1)
        .and_then(|e| e.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_state_opens_only_for_its_call_session_and_time() {
        let args = json!({"path": "/tmp/a", "n": 1});
        let d = call_digest("tools/call", "write_file", Some(&args));
        // Same call, other key order: same digest.
        let same = json!({"n": 1, "path": "/tmp/a"});
        assert_eq!(d, call_digest("tools/call", "write_file", Some(&same)));
        let s = seal(&d, "sess", 1000);
        assert!(is_ours(&s));
        assert!(open(&s, &d, "sess", 999).is_ok());
        assert!(open(&s, &d, "sess", 1000).is_ok());
        assert_eq!(open(&s, &d, "sess", 1001), Err(Bad::Expired));
        let other = call_digest(
            "tools/call",
            "write_file",
            Some(&json!({"path": "/etc/x", "n": 1})),
        );
        assert_eq!(open(&s, &other, "sess", 999), Err(Bad::Mismatch));
        assert_eq!(open(&s, &d, "other", 999), Err(Bad::Mismatch));
        // Tampered expiry or mac.
        let later = s.replacen(".1000.", ".9999.", 1);
        assert_eq!(open(&later, &d, "sess", 999), Err(Bad::Mismatch));
        let mut flipped = s.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(open(&flipped, &d, "sess", 999).is_err());
        assert_eq!(open("junk", &d, "sess", 0), Err(Bad::Malformed));
        assert!(!is_ours("server-state"));
    }

    #[test]
    fn a_nonce_is_spent_once() {
        let mut spent = Spent::default();
        assert!(spent.spend("n".into(), 10, 0).is_ok());
        assert_eq!(spent.spend("n".into(), 10, 0), Err(Bad::Replayed));
    }
}
