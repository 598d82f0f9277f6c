//! What a signature check concluded, and how each failure surfaces: the SPEC §3 JSON-RPC code,
//! a reason an operator can act on, and the audit event name used by the attack corpus.

use std::fmt;

use crate::sig::keys::KeyRole;
use crate::sig::verifier::Mode;

/// SPEC §3: signature missing, invalid, unknown key, wrong role or audience.
pub const CODE_SIGNATURE: i32 = -32010;
/// SPEC §3: timestamp outside the window.
pub const CODE_TIMESTAMP: i32 = -32011;
/// SPEC §3: replayed nonce.
pub const CODE_REPLAY: i32 = -32012;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `mode = "off"`: nothing was read.
    Skipped,
    Valid {
        kid: String,
    },
    /// No signature where one belongs (also: stripped, or moved under another `_meta` key).
    Missing,
    /// Malformed signature fields, or the signature does not verify.
    Invalid(String),
    UnknownKey {
        kid: String,
    },
    WrongRole {
        kid: String,
        expected: KeyRole,
        actual: KeyRole,
    },
    WrongAudience {
        expected: String,
        found: String,
    },
    /// `skew` = now − ts in seconds (positive: too old; negative: from the future).
    Expired {
        skew: i64,
        window_secs: u64,
    },
    Replayed,
    /// The replay cache is full of unexpired nonces: refusing beats forgetting one.
    ReplayCacheFull,
    /// `[cluster]` in enforce mode: the shared replay store (Redis) could not be asked, so
    /// whether another replica saw this nonce is unknown. A check that cannot decide refuses.
    ReplayStoreDown(String),
}

impl Outcome {
    pub fn is_valid(&self) -> bool {
        matches!(self, Outcome::Valid { .. })
    }

    /// The JSON-RPC error code when this outcome refuses a message; `None` when it passes.
    pub fn code(&self) -> Option<i32> {
        match self {
            Outcome::Skipped | Outcome::Valid { .. } => None,
            Outcome::Missing
            | Outcome::Invalid(_)
            | Outcome::UnknownKey { .. }
            | Outcome::WrongRole { .. }
            | Outcome::WrongAudience { .. } => Some(CODE_SIGNATURE),
            Outcome::Expired { .. } => Some(CODE_TIMESTAMP),
            Outcome::Replayed | Outcome::ReplayCacheFull | Outcome::ReplayStoreDown(_) => {
                Some(CODE_REPLAY)
            }
        }
    }

    /// HTTP status when no JSON-RPC body fits (SPEC §3: 401 for all signature failures).
    pub fn http_status(&self) -> Option<u16> {
        self.code().map(|_| 401)
    }

    /// A sentence for `error.data.reason` and the audit record.
    pub fn reason(&self) -> String {
        match self {
            Outcome::Skipped => "signature checks are off".into(),
            Outcome::Valid { kid } => format!("valid signature by key {kid}"),
            Outcome::Missing => "message is not signed; sign it with a trusted key (X-MCP-* headers over HTTP, \
                 _meta[\"dev.mcp-warden/signature\"] on stdio)"
                .into(),
            Outcome::Invalid(why) => format!("invalid signature: {why}"),
            Outcome::UnknownKey { kid } => {
                format!("key id {kid} is not a trusted key; add its public key to the config or sign with a trusted key")
            }
            Outcome::WrongRole { kid, expected, actual } => {
                format!("key {kid} is trusted as a {actual} key, but this message must be signed by a {expected} key")
            }
            Outcome::WrongAudience { expected, found } => {
                format!("signature is for server {found:?}, not {expected:?}; sign for the server this request goes to")
            }
            Outcome::Expired { skew, window_secs } => {
                let (amount, direction) = if *skew >= 0 { (*skew, "in the past") } else { (-skew, "in the future") };
                format!(
                    "signature timestamp is {amount} s {direction}; at most {window_secs} s is accepted, check the signer's clock (NTP)"
                )
            }
            Outcome::Replayed => "nonce already used by this key within the window; sign every message with a fresh nonce".into(),
            Outcome::ReplayCacheFull => {
                "too many signed messages within the window to remember their nonces; retry later or raise the replay capacity".into()
            }
            Outcome::ReplayStoreDown(why) => format!(
                "the cluster's shared replay cache is unreachable ({why}), so this nonce cannot be checked against the other replicas; refused until it is back (retry later)"
            ),
        }
    }

    /// Audit event name (attack corpus vocabulary). `None` for valid and skipped checks.
    pub fn audit_event(&self, mode: Mode) -> Option<&'static str> {
        Some(match self {
            Outcome::Skipped | Outcome::Valid { .. } => return None,
            // An unsigned message in audit mode is routine, not an attack signal.
            Outcome::Missing if mode != Mode::Enforce => "auth.unsigned",
            Outcome::Missing => "auth.signature_missing",
            Outcome::Invalid(_)
            | Outcome::UnknownKey { .. }
            | Outcome::WrongRole { .. }
            | Outcome::WrongAudience { .. } => "auth.signature_invalid",
            Outcome::Expired { .. } => "auth.timestamp_out_of_window",
            Outcome::Replayed | Outcome::ReplayCacheFull => "auth.replay",
            Outcome::ReplayStoreDown(_) => "cluster.unavailable",
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_spec_section_3() {
        let kid = || "k".to_string();
        let cases = [
            (Outcome::Skipped, None),
            (Outcome::Valid { kid: kid() }, None),
            (Outcome::Missing, Some(-32010)),
            (Outcome::Invalid("x".into()), Some(-32010)),
            (Outcome::UnknownKey { kid: kid() }, Some(-32010)),
            (
                Outcome::WrongRole {
                    kid: kid(),
                    expected: KeyRole::Client,
                    actual: KeyRole::Server,
                },
                Some(-32010),
            ),
            (
                Outcome::WrongAudience {
                    expected: "a".into(),
                    found: "b".into(),
                },
                Some(-32010),
            ),
            (
                Outcome::Expired {
                    skew: 301,
                    window_secs: 300,
                },
                Some(-32011),
            ),
            (Outcome::Replayed, Some(-32012)),
            (Outcome::ReplayCacheFull, Some(-32012)),
        ];
        for (outcome, code) in cases {
            assert_eq!(outcome.code(), code, "{outcome:?}");
            assert_eq!(outcome.http_status().is_some(), code.is_some());
            assert!(!outcome.reason().is_empty());
        }
    }

    #[test]
    fn reasons_say_what_to_do() {
        let r = Outcome::Expired {
            skew: -400,
            window_secs: 300,
        }
        .reason();
        assert!(
            r.contains("400 s in the future") && r.contains("clock"),
            "{r}"
        );
        assert_eq!(
            Outcome::Missing.audit_event(Mode::Audit),
            Some("auth.unsigned")
        );
        assert_eq!(
            Outcome::Missing.audit_event(Mode::Enforce),
            Some("auth.signature_missing")
        );
        assert_eq!(
            Outcome::Replayed.audit_event(Mode::Enforce),
            Some("auth.replay")
        );
    }
}
