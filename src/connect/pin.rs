//! The server identity key `connect` checks response signatures against (SPEC §4 "Server
//! identity"): `[[servers]] public_key` from config, else the key pinned on first contact in
//! `<state>/connect/<server>.key` (trust on first use).
//!
//! Once a key is pinned, every successful result must carry a valid signature by it: an unsigned
//! result from a pinned server reads as a stripped signature (downgrade, corpus SIG-06) and is
//! refused like a wrong one. Error responses have no `result` to hold a signature and pass
//! unsigned (`serve` cannot sign them either). A server that stopped signing on purpose is fixed by the operator
//! deleting the pin file, never silently.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::errors::{Rejection, Source};
use crate::sig::keys::{kid_of, parse_public_key, public_key_to_string, KeyRole, TrustedKeys};
use crate::sig::verifier::{Expect, Mode, SystemClock, Verifier, VerifierConfig};
use crate::sig::{message_scheme, Outcome, VerifyingKey};

/// What checking one server message concluded.
#[derive(Debug)]
pub enum Check {
    /// Not a result, or a valid signature by the pinned key, or unsigned with nothing pinned.
    Pass,
    /// Signed, but no key is pinned yet: the caller fetches the server's key (first contact) and
    /// calls [`ServerPin::adopt`] before checking again.
    NeedKey {
        kid: String,
    },
    Refuse(Rejection),
}

struct Pinned {
    key: VerifyingKey,
    verifier: Verifier,
}

pub struct ServerPin {
    server: String,
    file: PathBuf,
    window_secs: u64,
    from_config: bool,
    pinned: Mutex<Option<Arc<Pinned>>>,
}

/// A server name becomes a file name: keep it to a safe alphabet.
fn valid_name(server: &str) -> bool {
    !server.is_empty()
        && !server.starts_with('.')
        && server
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl ServerPin {
    /// `configured`: the `[[servers]] public_key` text, if set (it wins over any pin file).
    pub fn load(
        server: &str,
        configured: Option<&str>,
        state: &Path,
        window_secs: u64,
    ) -> Result<ServerPin, String> {
        if !valid_name(server) {
            return Err(format!(
                "server name {server:?} may only use letters, digits, '-', '_' and '.' (it names the pin file)"
            ));
        }
        let file = state.join("connect").join(format!("{server}.key"));
        let pin = ServerPin {
            server: server.to_owned(),
            file,
            window_secs,
            from_config: configured.is_some(),
            pinned: Mutex::new(None),
        };
        let text = match configured {
            Some(t) => Some(t.to_owned()),
            None => match fs::read_to_string(&pin.file) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(format!("cannot read {}: {e}", pin.file.display())),
            },
        };
        if let Some(text) = text {
            let key = parse_public_key(&text).map_err(|e| {
                let from = if configured.is_some() {
                    "[[servers]] public_key".to_owned()
                } else {
                    pin.file.display().to_string()
                };
                format!("pinned key for server {server:?} ({from}): {e}")
            })?;
            pin.set(key)?;
        }
        Ok(pin)
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The pinned key, if any.
    pub fn key(&self) -> Option<VerifyingKey> {
        self.lock().as_ref().map(|p| p.key)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<Pinned>>> {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, key: VerifyingKey) -> Result<(), String> {
        let mut keys = TrustedKeys::new();
        keys.insert(&self.server, KeyRole::Server, key)
            .map_err(|e| e.to_string())?;
        let config = VerifierConfig {
            mode: Mode::Enforce,
            window_secs: self.window_secs,
            replay_capacity: 10_000,
        };
        let verifier = Verifier::new(config, Arc::new(keys), Arc::new(SystemClock));
        *self.lock() = Some(Arc::new(Pinned { key, verifier }));
        Ok(())
    }

    /// Checks one message from the server. Only successful results carry response signatures.
    pub fn check(&self, message: &Value) -> Check {
        if message.get("result").is_none() || message.get("method").is_some() {
            return Check::Pass;
        }
        let pinned = self.lock().clone();
        let Some(pinned) = pinned else {
            return match message_scheme::extract(message) {
                Ok(None) => Check::Pass,
                Ok(Some(sig)) => Check::NeedKey { kid: sig.kid },
                Err(e) => Check::Refuse(self.refusal(
                    "auth.signature_invalid",
                    format!("malformed response signature: {e}"),
                )),
            };
        };
        let outcome = pinned.verifier.check_message(
            message,
            Expect {
                role: KeyRole::Server,
                audience: &self.server,
            },
        );
        if outcome.code().is_none() {
            return Check::Pass;
        }
        let event = outcome
            .audit_event(Mode::Enforce)
            .unwrap_or("auth.signature_invalid");
        let reason = match &outcome {
            Outcome::UnknownKey { kid } => format!(
                "response from server {:?} is signed by key {kid}, but the key pinned for it is {} ({}); \
                 if the server's key was changed on purpose, remove the pin and reconnect",
                self.server,
                kid_of(&pinned.key),
                self.origin()
            ),
            Outcome::Missing => format!(
                "response from server {:?} is not signed, but a key is pinned for it ({}); \
                 a stripped signature is refused",
                self.server,
                self.origin()
            ),
            other => format!("response from server {:?}: {}", self.server, other.reason()),
        };
        let mut r = self.refusal(event, reason);
        r.code = outcome.code().map_or(r.code, i64::from);
        Check::Refuse(r)
    }

    fn origin(&self) -> String {
        if self.from_config {
            "[[servers]] public_key".into()
        } else {
            self.file.display().to_string()
        }
    }

    fn refusal(&self, event: &'static str, reason: String) -> Rejection {
        Rejection::new(
            crate::errors::SIGNATURE_INVALID,
            event,
            "response_signature",
            reason,
        )
        .from(Source::Upstream)
        .alert()
    }

    /// Trust on first use: pin `public_key` (as the server published it) if it is the key that
    /// made the signature `kid` names. The file is created only if absent, so two processes
    /// racing on first contact cannot overwrite each other; the loser adopts what the winner
    /// pinned and checks against that.
    pub fn adopt(&self, public_key: &str, kid: &str) -> Result<(), String> {
        let key = parse_public_key(public_key).map_err(|e| format!("server key: {e}"))?;
        if kid_of(&key) != kid {
            return Err(format!(
                "the server publishes key {} but signed with key {kid}",
                kid_of(&key)
            ));
        }
        let dir = self.file.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let tmp = dir.join(format!(".{}.{}.tmp", self.server, std::process::id()));
        fs::write(&tmp, format!("{}\n", public_key_to_string(&key)))
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        let linked = fs::hard_link(&tmp, &self.file);
        let _ = fs::remove_file(&tmp);
        let key = match linked {
            Ok(()) => {
                tracing::warn!(
                    "pinned server key {kid} for {:?} on first contact in {}",
                    self.server,
                    self.file.display()
                );
                key
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let text = fs::read_to_string(&self.file)
                    .map_err(|e| format!("cannot read {}: {e}", self.file.display()))?;
                parse_public_key(&text).map_err(|e| format!("{}: {e}", self.file.display()))?
            }
            Err(e) => return Err(format!("cannot pin {}: {e}", self.file.display())),
        };
        self.set(key)
    }

    /// The refusal for an unsigned result when nothing is pinned and signatures are enforced:
    /// nothing proves who wrote it, so it is refused rather than trusted on no evidence.
    pub fn unsigned_unpinned(&self) -> Rejection {
        let mut r = self.refusal(
            "auth.signature_missing",
            format!(
                "response from server {:?} is not signed and no key is pinned for it; with \
                 signatures.mode = \"enforce\" unsigned results are refused: pin the server's key \
                 in the config ([[servers]] name = {:?}, public_key = \"ed25519:...\")",
                self.server, self.server
            ),
        );
        r.message = Some("Signature missing: unsigned result and no server key pinned".into());
        r
    }

    /// The refusal for a signed response whose key could not be pinned.
    pub fn cannot_pin(&self, why: &str) -> Rejection {
        self.refusal(
            "auth.signature_invalid",
            format!(
                "response from server {:?} is signed, but no key is pinned for it and none could be \
                 obtained ({why}); set [[servers]] public_key",
                self.server
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig::message_scheme::sign_value;
    use crate::sig::SigningKey;
    use serde_json::json;

    fn signed(key: &SigningKey, aud: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let msg = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[]}});
        sign_value(&msg, key, aud, now, &crate::sig::new_nonce()).unwrap()
    }

    #[test]
    fn first_use_pins_then_refuses_another_key_and_unsigned_results() {
        let dir = tempfile::tempdir().unwrap();
        let good = SigningKey::from_bytes(&[1; 32]);
        let evil = SigningKey::from_bytes(&[2; 32]);
        let pin = ServerPin::load("fs", None, dir.path(), 300).unwrap();
        let unsigned = json!({"jsonrpc":"2.0","id":1,"result":{}});
        assert!(matches!(pin.check(&unsigned), Check::Pass));
        let msg = signed(&good, "fs");
        let Check::NeedKey { kid } = pin.check(&msg) else {
            panic!("expected NeedKey")
        };
        let text = public_key_to_string(&good.verifying_key());
        assert!(pin
            .adopt(&public_key_to_string(&evil.verifying_key()), &kid)
            .is_err());
        pin.adopt(&text, &kid).unwrap();
        assert!(matches!(pin.check(&msg), Check::Pass));
        let Check::Refuse(r) = pin.check(&signed(&evil, "fs")) else {
            panic!("expected refusal")
        };
        assert_eq!(r.code, -32010);
        assert!(r.reason.contains("pinned"), "{}", r.reason);
        assert!(matches!(pin.check(&unsigned), Check::Refuse(_)));
        // Errors have no `result` to hold a signature (serve leaves them unsigned): they pass.
        let error = json!({"jsonrpc":"2.0","id":1,"error":{"code":-32013,"message":"denied"}});
        assert!(matches!(pin.check(&error), Check::Pass));
        assert!(matches!(pin.check(&signed(&good, "gh")), Check::Refuse(_)));
        // A second process finds the pin file.
        let again = ServerPin::load("fs", None, dir.path(), 300).unwrap();
        assert_eq!(again.key(), Some(good.verifying_key()));
        assert!(ServerPin::load("../x", None, dir.path(), 300).is_err());
    }
}
