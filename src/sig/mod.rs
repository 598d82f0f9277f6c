//! Signatures: who is speaking (SPEC §4) and who approved a pin file (SPEC §5).
//!
//! | file                | job                                                                  |
//! |---------------------|----------------------------------------------------------------------|
//! | `keys.rs`           | Ed25519 keys: PKCS#8 PEM in/out, config public keys, `kid`, registry |
//! | `jcs.rs`            | RFC 8785 canonical JSON (byte-identical to python `rfc8785`)         |
//! | `http_scheme.rs`    | `X-MCP-*` header scheme over the raw HTTP body                       |
//! | `message_scheme.rs` | `_meta["dev.mcp-warden/signature"]` scheme over JCS of the message   |
//! | `verifier.rs`       | the pipeline's check: mode, role, audience, clock window, replay     |
//! | `clock.rs`          | injectable wall clock (`SystemClock`, `ManualClock` for tests)       |
//! | `replay.rs`         | bounded `(kid, nonce)` cache; fails closed when full                 |
//! | `outcome.rs`        | the check's result, its SPEC §3 code, reason and audit event         |
//! | `attestation.rs`    | operator attestation of pin files                                    |
//!
//! Invariants:
//! - Verification is always `verify_strict` (no malleable or small-order signatures).
//! - A signature is read from exactly one place; look-alikes (reserved `mcp`/`modelcontextprotocol`
//!   `_meta` prefixes, other key names) are never read, so stripping or moving one reads as missing.
//! - The replay cache only learns a nonce after the signature verified, so forged traffic cannot
//!   burn a legitimate client's nonces.
//! - The reference is `shared/tools/mcpsig.py`; `fixtures/vectors/signatures.json` pins byte equality.

pub mod attestation;
pub mod clock;
pub mod http_scheme;
pub mod jcs;
pub mod keys;
pub mod message_scheme;
pub mod outcome;
pub mod replay;
pub mod verifier;

#[cfg(test)]
mod vectors_tests;

pub use attestation::{Attestation, AttestationError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use http_scheme::{HttpSigHeaders, HttpSignature};
pub use jcs::JcsError;
pub use keys::{kid_of, KeyError, KeyRole, TrustedKey, TrustedKeys};
pub use message_scheme::{MessageSignature, MsgSigError};
pub use outcome::Outcome;
pub use replay::{Claim, ReplayCache, SharedReplay};
pub use verifier::{Expect, Mode, Verifier, VerifierConfig};

/// Re-exported so callers need no direct dependency on ed25519-dalek for the key types.
pub use ed25519_dalek::{SigningKey, VerifyingKey};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Fewest random bytes a nonce may carry (SPEC §4).
pub const NONCE_MIN_BYTES: usize = 16;
/// Most bytes a nonce may carry: bounds what one replay-cache entry can cost.
pub const NONCE_MAX_BYTES: usize = 64;

/// A fresh nonce: base64url (no padding) of 16 random bytes, as mcpsig.py makes them.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; NONCE_MIN_BYTES];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a nonce, accepting only unpadded canonical base64url of 16..=64 bytes. One spelling per
/// byte string matters: the replay cache keys on the decoded bytes, but a second accepted spelling
/// would still be a second signed message for the same nonce.
pub fn parse_nonce(nonce: &str) -> Result<Vec<u8>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(nonce)
        .map_err(|_| "nonce is not unpadded base64url".to_string())?;
    if !(NONCE_MIN_BYTES..=NONCE_MAX_BYTES).contains(&bytes.len()) {
        return Err(format!(
            "nonce decodes to {} bytes; it must be {NONCE_MIN_BYTES} to {NONCE_MAX_BYTES} random bytes",
            bytes.len()
        ));
    }
    Ok(bytes)
}
