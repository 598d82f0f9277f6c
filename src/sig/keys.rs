//! Ed25519 keys (SPEC §4): private keys as PKCS#8 PEM, public keys as standard base64 of the 32 raw
//! bytes (optional `ed25519:` prefix), `kid` = lowercase hex of SHA-256(raw public key)[..8], and the
//! registry of keys this proxy trusts, each with the role it may sign for.

use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Prefix a public key may carry in config.
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not an Ed25519 PKCS#8 PEM private key: {0}")]
    Pem(String),
    #[error("public key is not standard base64: {0}")]
    Base64(String),
    #[error("public key must be 32 bytes, got {0}")]
    Length(usize),
    #[error("public key is not a usable Ed25519 point (invalid or small-order)")]
    WeakKey,
    #[error("key {kid} is already trusted as {existing:?}")]
    Duplicate { kid: String, existing: String },
}

/// Who a key speaks for. A client key must not pass for a server, nor either for an operator
/// approving pins: the registry records one role per key and the verifier checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    Client,
    Server,
    Operator,
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRole::Client => "client",
            KeyRole::Server => "server",
            KeyRole::Operator => "operator",
        })
    }
}

/// Key id of a public key: lowercase hex of the first 8 bytes of SHA-256 over the raw 32 bytes.
pub fn kid_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

/// Loads a private key from PKCS#8 PEM (v1 as written by `openssl genpkey -algorithm ed25519` and
/// mcpsig.py, or v2 with the public key, which must then match).
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem.trim_start()).map_err(|e| KeyError::Pem(e.to_string()))
}

/// Writes a private key as PKCS#8 v1 PEM with LF line endings: the same bytes openssl and mcpsig.py
/// write (dalek's own encoder emits v2, which older tools reject). Zeroized on drop.
pub fn signing_key_to_pem(key: &SigningKey) -> Result<Zeroizing<String>, KeyError> {
    let pair = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    pair.to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Pem(e.to_string()))
}

/// A fresh key from the thread CSPRNG (seeded from the OS).
pub fn generate_signing_key() -> SigningKey {
    SigningKey::generate(&mut rand::rng())
}

/// Parses a config public key: standard base64 (padded) of 32 raw bytes, optional `ed25519:`.
/// Small-order points are refused here so a misconfigured key fails at startup, not per request.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let text = text.trim();
    let text = text.strip_prefix(PUBLIC_KEY_PREFIX).unwrap_or(text);
    let raw = STANDARD
        .decode(text)
        .map_err(|e| KeyError::Base64(e.to_string()))?;
    let raw: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Length(raw.len()))?;
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::WeakKey)?;
    if key.is_weak() {
        return Err(KeyError::WeakKey);
    }
    Ok(key)
}

/// The config spelling of a public key: standard base64 of the raw bytes, no prefix.
pub fn public_key_to_string(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// One trusted key and what it may sign for.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub role: KeyRole,
    pub key: VerifyingKey,
}

/// kid -> trusted key. Built once from config; lookups happen on every signed message.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    by_kid: HashMap<String, TrustedKey>,
}

impl TrustedKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key and returns its kid. The same key twice is refused rather than merged: one role
    /// per key keeps "wrong role" unambiguous.
    pub fn insert(
        &mut self,
        name: &str,
        role: KeyRole,
        key: VerifyingKey,
    ) -> Result<String, KeyError> {
        let kid = kid_of(&key);
        if let Some(existing) = self.by_kid.get(&kid) {
            return Err(KeyError::Duplicate {
                kid,
                existing: existing.name.clone(),
            });
        }
        self.by_kid.insert(
            kid.clone(),
            TrustedKey {
                name: name.to_string(),
                role,
                key,
            },
        );
        Ok(kid)
    }

    /// [`TrustedKeys::insert`] from the config spelling of a public key.
    pub fn insert_text(
        &mut self,
        name: &str,
        role: KeyRole,
        public_key: &str,
    ) -> Result<String, KeyError> {
        self.insert(name, role, parse_public_key(public_key)?)
    }

    pub fn get(&self, kid: &str) -> Option<&TrustedKey> {
        self.by_kid.get(kid)
    }

    pub fn len(&self) -> usize {
        self.by_kid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fixed seed keeps these tests deterministic.
    const SEED: [u8; 32] = [7u8; 32];

    #[test]
    fn pem_round_trip_is_v1() {
        let key = SigningKey::from_bytes(&SEED);
        let pem = signing_key_to_pem(&key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAw"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        let back = signing_key_from_pem(&pem).unwrap();
        assert_eq!(back.to_bytes(), SEED);
    }

    #[test]
    fn pem_v2_with_public_key_loads() {
        let key = SigningKey::from_bytes(&SEED);
        let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(signing_key_from_pem(&v2).unwrap().to_bytes(), SEED);
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        for text in [
            "",
            "garbage",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(matches!(signing_key_from_pem(text), Err(KeyError::Pem(_))));
        }
    }

    #[test]
    fn public_key_spellings() {
        let key = SigningKey::from_bytes(&SEED).verifying_key();
        let text = public_key_to_string(&key);
        assert_eq!(parse_public_key(&text).unwrap(), key);
        assert_eq!(
            parse_public_key(&format!(" ed25519:{text}\n")).unwrap(),
            key
        );
        assert!(matches!(parse_public_key("AAAA"), Err(KeyError::Length(3))));
        assert!(matches!(
            parse_public_key("not base64!"),
            Err(KeyError::Base64(_))
        ));
        // The identity point has small order: refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            parse_public_key(&STANDARD.encode(identity)),
            Err(KeyError::WeakKey)
        );
    }

    #[test]
    fn registry_refuses_duplicates() {
        let key = SigningKey::from_bytes(&SEED).verifying_key();
        let mut keys = TrustedKeys::new();
        let kid = keys.insert("alice", KeyRole::Client, key).unwrap();
        assert_eq!(kid.len(), 16);
        assert_eq!(keys.get(&kid).unwrap().role, KeyRole::Client);
        assert!(matches!(
            keys.insert("alice2", KeyRole::Server, key),
            Err(KeyError::Duplicate { .. })
        ));
        assert_eq!(keys.len(), 1);
    }
}
