//! Signed checkpoints: every `checkpoint_every` records (and when the log closes) the writer
//! appends a `checkpoint` record whose `detail.sig` is this proxy's Ed25519 signature over the
//! chain head it follows. A hash chain alone proves order, not origin: someone who rewrites a
//! file can rebuild every `prev`; they cannot forge the checkpoints without the key.
//!
//! Signed input: `"mcp-audit-checkpoint-v1\n" + seq + "\n" + prev`, where `seq` and `prev` are
//! the checkpoint record's own fields (so it covers every line before it).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

pub const DOMAIN: &str = "mcp-audit-checkpoint-v1\n";

/// Signs checkpoints for one log.
pub struct Checkpointer {
    key: SigningKey,
    kid: String,
    /// A checkpoint after every this many records (at least 1).
    pub every: u64,
}

impl Checkpointer {
    pub fn new(key: SigningKey, every: u64) -> Checkpointer {
        let kid = crate::sig::keys::kid_of(&key.verifying_key());
        Checkpointer {
            key,
            kid,
            every: every.max(1),
        }
    }

    /// `detail` of the checkpoint record at `seq` whose `prev` is `prev`.
    pub fn detail(&self, seq: u64, prev: &str) -> serde_json::Value {
        let sig = self.key.sign(signing_input(seq, prev).as_bytes());
        serde_json::json!({"kid": self.kid, "sig": STANDARD.encode(sig.to_bytes()), "scheme": DOMAIN.trim_end()})
    }
}

fn signing_input(seq: u64, prev: &str) -> String {
    format!("{DOMAIN}{seq}\n{prev}")
}

/// Check one checkpoint record (parsed) against `key`.
pub fn verify(record: &serde_json::Value, key: &VerifyingKey) -> Result<(), String> {
    let seq = record
        .get("seq")
        .and_then(|v| v.as_u64())
        .ok_or("checkpoint has no seq")?;
    let prev = record
        .get("prev")
        .and_then(|v| v.as_str())
        .ok_or("checkpoint has no prev")?;
    let sig = record
        .pointer("/detail/sig")
        .and_then(|v| v.as_str())
        .ok_or("checkpoint has no detail.sig")?;
    let bytes = STANDARD
        .decode(sig)
        .map_err(|_| "checkpoint signature is not base64")?;
    let sig = Signature::from_slice(&bytes).map_err(|_| "checkpoint signature is not 64 bytes")?;
    key.verify_strict(signing_input(seq, prev).as_bytes(), &sig)
        .map_err(|_| "checkpoint signature does not verify with this key".to_owned())
}
