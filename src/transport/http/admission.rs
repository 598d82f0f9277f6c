//! The one admission rule of `serve`: who may open a session (or a per-request process), and
//! who may use an open one. Every path calls it — POST `initialize`, POST / GET / DELETE on a
//! session, the legacy SSE stream and its POSTs, modern stateless requests — so the rule cannot
//! drift between copies again.
//!
//! A request's proof is its signature, by either scheme: the `X-MCP-*` headers, or else the
//! message scheme in `params._meta`. It is verified once, here, and handed to the pipeline as
//! already checked (a nonce is consumed once). A session belongs to the key that proved its
//! `initialize`, whichever scheme proved it: a request proved by another key is refused in
//! every mode (a session id is not a credential), and in enforce mode every request on it must
//! be proved.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::StatusCode;
use serde_json::Value;

use super::body::cpu;
use super::post::signature;
use super::session::Session;
use super::slots::Slot;
use super::status::EdgeRefusal;
use super::{Route, Shared};
use crate::errors::SIGNATURE_INVALID;
use crate::pipeline::INLINE_MAX;
use crate::sig::keys::KeyRole;
use crate::sig::message_scheme::META_KEY;
use crate::sig::outcome::Outcome as SigOutcome;
use crate::sig::verifier::{Expect, Mode, Verifier};

/// How long a client over its session cap is told to wait.
const RETRY_MS: u64 = 1000;

/// What a request proved about its sender.
pub struct Proof {
    /// The signature check's conclusion; `None` when the route checks no signatures. Handed to
    /// the pipeline as checked: it must not read the signature (and spend its nonce) again.
    pub outcome: Option<SigOutcome>,
    enforce: bool,
    /// A `_meta` without our signature member: a stripped or moved signature, not an unsigned
    /// client (the pipeline's reading of the same case).
    stripped: bool,
}

impl Proof {
    /// The verified key id, whichever scheme proved it.
    pub fn kid(&self) -> Option<&str> {
        match &self.outcome {
            Some(SigOutcome::Valid { kid }) => Some(kid),
            _ => None,
        }
    }

    /// The refusal an unproved request gets in enforce mode (the pipeline's codes and events).
    fn refusal(&self) -> Option<EdgeRefusal> {
        let o = self.outcome.as_ref()?;
        if !self.enforce || o.code().is_none() {
            return None;
        }
        let mut event = o
            .audit_event(Mode::Enforce)
            .unwrap_or("auth.signature_invalid");
        let mut reason = o.reason();
        if *o == SigOutcome::Missing && self.stripped {
            event = "auth.signature_invalid";
            reason = format!("{reason} (a _meta object is present but carries no {META_KEY} member: stripped or moved signatures are refused)");
        }
        let code = o.code().map_or(SIGNATURE_INVALID, i64::from);
        let r = EdgeRefusal::new(
            StatusCode::UNAUTHORIZED,
            event,
            "signatures.enforce",
            reason,
        )
        .code(code);
        // A stale timestamp is usually a skewed clock, not an attack; everything else is.
        Some(match o {
            SigOutcome::Expired { .. } => r,
            _ => r.alert(),
        })
    }
}

/// Verify the request's signature: the header scheme when it carries one, else the message
/// scheme over the body (a batch is proved when every element is, by one key).
pub fn proof(route: &Route, headers: &HeaderMap, body: &[u8]) -> Result<Proof, EdgeRefusal> {
    let Some(verifier) = route.guards.verifier.as_ref() else {
        return Ok(Proof {
            outcome: None,
            enforce: false,
            stripped: false,
        });
    };
    let outcome = match signature(route, headers, body)? {
        Some(o) => o,
        None => message_scheme(verifier, &route.name, body),
    };
    Ok(Proof {
        stripped: outcome == SigOutcome::Missing && contains(body, b"\"_meta\""),
        outcome: Some(outcome),
        enforce: verifier.mode() == Mode::Enforce,
    })
}

fn message_scheme(verifier: &Verifier, audience: &str, body: &[u8]) -> SigOutcome {
    // No signature member anywhere reads as missing without building a tree (a key spelled
    // with escapes is missed too, and a missing signature fails closed in enforce mode).
    if !contains(body, META_KEY.as_bytes()) {
        return SigOutcome::Missing;
    }
    let expect = Expect {
        role: KeyRole::Client,
        audience,
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => {
            let mut kid: Option<String> = None;
            for item in &items {
                match verifier.check_message(item, expect) {
                    SigOutcome::Valid { kid: k } => match &kid {
                        Some(first) if *first != k => {
                            return SigOutcome::Invalid(
                                "the elements of one batch are signed by different keys".into(),
                            )
                        }
                        _ => kid = Some(k),
                    },
                    other => return other,
                }
            }
            kid.map_or(SigOutcome::Missing, |kid| SigOutcome::Valid { kid })
        }
        Ok(message) => verifier.check_message(&message, expect),
        Err(e) => SigOutcome::Invalid(e.to_string()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What an opening counts against: a session (with the global session cap) or only a process.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    Session,
    Process,
}

/// May this request open a session or start a process? The same checks as `initialize`
/// (proved in enforce mode), then the caps: all sessions, and this client's sessions and
/// processes (its key, or its address when unsigned). The slot is held as long as the
/// session or process lives.
pub fn admit_new(
    shared: &Shared,
    proof: &Proof,
    client: IpAddr,
    opening: Opening,
) -> Result<Slot<String>, EdgeRefusal> {
    if let Some(r) = proof.refusal() {
        return Err(r);
    }
    if opening == Opening::Session && shared.sessions.len() >= shared.max_sessions {
        return Err(EdgeRefusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "http.session_limit",
            "serve.max_sessions",
            "too many sessions; retry later".into(),
        ));
    }
    let who = match proof.kid() {
        Some(kid) => format!("key {kid}"),
        None => format!("address {client}"),
    };
    let max = shared.max_sessions_per_client;
    if let Some(slot) = shared.clients.take(who.clone(), max) {
        return Ok(slot);
    }
    if opening == Opening::Session {
        if let Some(old) = shared.sessions.evict_idle(&who) {
            tracing::info!(
                "{who} at its cap of {max} sessions: idle session {} ended",
                old.id
            );
            old.close();
            // Its slot comes back when the last holder lets go (now, unless a request raced).
            drop(old);
            if let Some(slot) = shared.clients.take(who.clone(), max) {
                return Ok(slot);
            }
        }
    }
    Err({
        EdgeRefusal::too_many(
            "http.session_limit",
            "serve.max_sessions_per_client",
            format!("{who} already holds {max} sessions or processes; end one (DELETE) or raise [serve] max_sessions_per_client"),
            RETRY_MS,
        )
        .alert()
        .kid(proof.kid())
    })
}

/// May this request use `session`? Proved by the key that opened it; unproved only outside
/// enforce mode.
pub fn admit(session: &Session, proof: &Proof) -> Result<(), EdgeRefusal> {
    if let Some(r) = proof.refusal() {
        return Err(r);
    }
    match (session.kid.as_deref(), proof.kid()) {
        (Some(bound), Some(kid)) if bound != kid => Err(EdgeRefusal::new(
            StatusCode::NOT_FOUND,
            "session.identity_mismatch",
            "session",
            format!("unknown or ended session for key {kid}: start a new one with initialize"),
        )
        .code(-32001)
        .alert()
        .kid(Some(kid))),
        _ => Ok(()),
    }
}

/// Refuse an unproved request in enforce mode (requests that open nothing and use no session:
/// modern stateless requests to an HTTP upstream).
pub fn check(proof: &Proof) -> Result<(), EdgeRefusal> {
    proof.refusal().map_or(Ok(()), Err)
}

/// [`proof`] for a request body, off the async workers when the body is large (the message
/// scheme parses it).
pub async fn prove(
    route: &Arc<Route>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Proof, EdgeRefusal> {
    if body.len() <= INLINE_MAX {
        return proof(route, headers, body);
    }
    let (route, headers, body) = (route.clone(), headers.clone(), body.clone());
    cpu(body.len(), move || proof(&route, &headers, &body)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig::clock::ManualClock;
    use crate::sig::keys::{generate_signing_key, TrustedKeys};
    use crate::sig::verifier::VerifierConfig;
    use crate::sig::{message_scheme, new_nonce};

    const NOW: i64 = 1_700_000_000;

    fn signed(key: &ed25519_dalek::SigningKey, id: u32) -> Value {
        let msg = serde_json::json!({"jsonrpc":"2.0","id":id,"method":"ping","params":{}});
        message_scheme::sign_value(&msg, key, "echo", NOW, &new_nonce()).unwrap()
    }

    /// A batch is proved only when every element is, by one key: mixing identities in one
    /// body must not let the first element's key vouch for the others.
    #[test]
    fn a_batch_is_proved_by_one_key_or_not_at_all() {
        let (a, b) = (generate_signing_key(), generate_signing_key());
        let mut keys = TrustedKeys::new();
        let kid_a = keys
            .insert("a", KeyRole::Client, a.verifying_key())
            .unwrap();
        keys.insert("b", KeyRole::Client, b.verifying_key())
            .unwrap();
        let config = VerifierConfig {
            mode: Mode::Enforce,
            ..VerifierConfig::default()
        };
        let v = Verifier::new(config, Arc::new(keys), Arc::new(ManualClock::new(NOW)));
        let check = |msgs: Vec<Value>| {
            let body = serde_json::to_vec(&Value::Array(msgs)).unwrap();
            message_scheme(&v, "echo", &body)
        };
        let valid_a = SigOutcome::Valid { kid: kid_a.clone() };
        assert_eq!(check(vec![signed(&a, 1), signed(&a, 2)]), valid_a);
        assert!(matches!(
            check(vec![signed(&a, 3), signed(&b, 4)]),
            SigOutcome::Invalid(_)
        ));
        let unsigned = serde_json::json!({"jsonrpc":"2.0","id":5,"method":"ping"});
        assert_eq!(check(vec![signed(&a, 6), unsigned]), SigOutcome::Missing);
        let one = serde_json::to_vec(&signed(&a, 7)).unwrap();
        assert_eq!(message_scheme(&v, "echo", &one), valid_a);
        assert_eq!(message_scheme(&v, "echo", b"{}"), SigOutcome::Missing);
    }
}
