//! Step: message-scheme signatures on client requests and notifications (SPEC §4). Runs before
//! any check that could reveal what exists, so an unauthenticated caller learns nothing.

use super::Pipeline;
use crate::audit::Record;
use crate::errors::{Rejection, REPLAYED_NONCE, SIGNATURE_INVALID, TIMESTAMP_OUTSIDE_WINDOW};
use crate::sig::keys::KeyRole;
use crate::sig::message_scheme::META_KEY;
use crate::sig::outcome::Outcome;
use crate::sig::verifier::{Expect, Mode};

impl Pipeline {
    /// Verify the signature of one client message (`line` is its exact bytes). `checked` is the
    /// outcome of a transport-level check (the HTTP header scheme) when there was one; stdio
    /// messages carry their signature inside (`_meta`).
    pub(super) fn check_signature(
        &self,
        line: &[u8],
        checked: Option<&Outcome>,
        record: &mut Record,
    ) -> Result<(), Rejection> {
        let Some(verifier) = self.guards.verifier.as_ref() else {
            return Ok(());
        };
        let outcome = match checked {
            Some(o) => o.clone(),
            // Fast path: no signature member anywhere in the bytes reads as "missing" without
            // building a tree. A key spelled with escapes is missed here too, and a missing
            // signature fails closed in enforce mode.
            None if !contains(line, META_KEY.as_bytes()) => Outcome::Missing,
            None => match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(message) => verifier.check_message(
                    &message,
                    Expect {
                        role: KeyRole::Client,
                        audience: &self.server,
                    },
                ),
                Err(e) => Outcome::Invalid(e.to_string()),
            },
        };
        if let Outcome::Valid { kid } = &outcome {
            record.kid = Some(kid.clone());
            return Ok(());
        }
        let mut event = outcome
            .audit_event(verifier.mode())
            .unwrap_or("auth.signature_invalid");
        let mut reason = outcome.reason();
        if !verifier.refuses(&outcome) {
            // Audit mode: recorded, passes. Unsigned traffic is routine there, not an alert.
            record.event = event.to_owned();
            record.alert = outcome != Outcome::Missing;
            record.reason = Some(reason);
            return Ok(());
        }
        if outcome == Outcome::Missing && contains(line, b"\"_meta\"") {
            // A `_meta` without our signature is a stripped or relocated one: a downgrade attempt
            // (signatures under reserved prefixes are never read), not an unsigned client.
            event = "auth.signature_invalid";
            reason = format!("{reason} (a _meta object is present but carries no {META_KEY} member: stripped or moved signatures are refused)");
        }
        let code = match outcome.code() {
            Some(-32011) => TIMESTAMP_OUTSIDE_WINDOW,
            Some(-32012) => REPLAYED_NONCE,
            _ => SIGNATURE_INVALID,
        };
        debug_assert_eq!(verifier.mode(), Mode::Enforce);
        let rejection = Rejection::new(code, event, "signatures.enforce", reason);
        // A stale timestamp is usually a skewed clock, not an attack; everything else is.
        Err(match outcome {
            Outcome::Expired { .. } => rejection,
            _ => rejection.alert(),
        })
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
