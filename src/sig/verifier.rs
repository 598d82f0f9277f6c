//! The signature check the pipeline runs (SPEC §4 "Checks"): trusted key with the right role,
//! strict signature, audience, `|now - ts| ≤ window`, `(kid, nonce)` unseen within the window.
//!
//! Order, and why:
//! 1. parse — malformed input never reaches crypto;
//! 2. key lookup and role — cheap, and a client key must not pass for a server;
//! 3. signature — everything after reads claims, which mean nothing until they verify;
//! 4. audience, then timestamp;
//! 5. replay last: a nonce is remembered only once the message proved authentic, so forged
//!    traffic naming a victim's kid cannot burn the victim's nonces or fill the cache.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::sig::http_scheme::{self, HttpSigHeaders};
use crate::sig::keys::{KeyRole, TrustedKeys};
use crate::sig::message_scheme;

use crate::sig::outcome::Outcome;
use crate::sig::replay::{Claim, Remember, ReplayCache, SharedReplay};

pub use crate::sig::clock::{Clock, ManualClock, SystemClock};

/// `[signatures] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    Off,
    #[default]
    Audit,
    Enforce,
}

impl std::str::FromStr for Mode {
    type Err = String;

    /// The config spelling: `"off" | "audit" | "enforce"`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "off" => Ok(Mode::Off),
            "audit" => Ok(Mode::Audit),
            "enforce" => Ok(Mode::Enforce),
            other => Err(format!(
                "signatures.mode must be \"off\", \"audit\" or \"enforce\", not {other:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierConfig {
    pub mode: Mode,
    pub window_secs: u64,
    /// Most nonces remembered at once; when full of unexpired ones, checks fail closed.
    pub replay_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        // 100k entries is ~25 MiB worst case and ~330 signed messages/s sustained over 300 s.
        Self {
            mode: Mode::Audit,
            window_secs: 300,
            replay_capacity: 100_000,
        }
    }
}

/// What the caller expects of this message: the signer's role and the audience (server name).
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub role: KeyRole,
    pub audience: &'a str,
}

pub struct Verifier {
    config: VerifierConfig,
    keys: Arc<TrustedKeys>,
    clock: Arc<dyn Clock>,
    replay: ReplayCache,
    /// `[cluster]`: the replay cache every replica shares; the local one stays in front.
    shared: Option<Arc<dyn SharedReplay>>,
}

impl Verifier {
    pub fn new(config: VerifierConfig, keys: Arc<TrustedKeys>, clock: Arc<dyn Clock>) -> Self {
        let replay = ReplayCache::new(config.replay_capacity);
        Self {
            config,
            keys,
            clock,
            replay,
            shared: None,
        }
    }

    /// Claim nonces cluster-wide too (`cluster/replay.rs`).
    pub fn with_shared_replay(mut self, shared: Arc<dyn SharedReplay>) -> Self {
        self.shared = Some(shared);
        self
    }

    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    pub fn replay_cache(&self) -> &ReplayCache {
        &self.replay
    }

    /// True when this outcome must stop the message (enforce mode and not valid). In audit mode
    /// the caller records the outcome and forwards.
    pub fn refuses(&self, outcome: &Outcome) -> bool {
        self.config.mode == Mode::Enforce && outcome.code().is_some()
    }

    /// HTTP header scheme over the raw body.
    pub fn check_http(&self, headers: &HttpSigHeaders, body: &[u8], expect: Expect<'_>) -> Outcome {
        if self.config.mode == Mode::Off {
            return Outcome::Skipped;
        }
        let parsed = match headers.parse() {
            Ok(Some(p)) => p,
            Ok(None) => return Outcome::Missing,
            Err(reason) => return Outcome::Invalid(reason),
        };
        // The audience is not sent: it is part of the signed input, so a request for another
        // route simply fails to verify.
        self.finish(
            &parsed.kid,
            parsed.ts,
            &parsed.nonce_bytes,
            None,
            expect,
            |key| http_scheme::verify(key, &parsed, expect.audience, body),
        )
    }

    /// Message scheme (`_meta` signature) over JCS of the message.
    pub fn check_message(&self, message: &Value, expect: Expect<'_>) -> Outcome {
        if self.config.mode == Mode::Off {
            return Outcome::Skipped;
        }
        let parsed = match message_scheme::extract(message) {
            Ok(Some(p)) => p,
            Ok(None) => return Outcome::Missing,
            Err(e) => return Outcome::Invalid(e.to_string()),
        };
        self.finish(
            &parsed.kid,
            parsed.ts,
            &parsed.nonce_bytes,
            Some(&parsed.aud),
            expect,
            |key| message_scheme::verify_with(message, &parsed, key),
        )
    }

    fn finish(
        &self,
        kid: &str,
        ts: i64,
        nonce: &[u8],
        claimed_audience: Option<&str>,
        expect: Expect<'_>,
        verify: impl FnOnce(&VerifyingKey) -> bool,
    ) -> Outcome {
        let Some(trusted) = self.keys.get(kid) else {
            return Outcome::UnknownKey {
                kid: kid.to_string(),
            };
        };
        if trusted.role != expect.role {
            return Outcome::WrongRole {
                kid: kid.to_string(),
                expected: expect.role,
                actual: trusted.role,
            };
        }
        if !verify(&trusted.key) {
            return Outcome::Invalid(format!(
                "signature by key {kid} does not verify for this message and audience {:?}",
                expect.audience
            ));
        }
        if let Some(found) = claimed_audience {
            if found != expect.audience {
                return Outcome::WrongAudience {
                    expected: expect.audience.to_string(),
                    found: found.to_string(),
                };
            }
        }
        let window = i64::try_from(self.config.window_secs).unwrap_or(i64::MAX);
        let now = self.clock.now_unix();
        let skew = now.saturating_sub(ts);
        if skew.unsigned_abs() > self.config.window_secs {
            return Outcome::Expired {
                skew,
                window_secs: self.config.window_secs,
            };
        }
        let expires_at = ts.saturating_add(window);
        match self.replay.remember(kid, nonce, expires_at, now) {
            Remember::Fresh => {}
            Remember::Seen => return Outcome::Replayed,
            Remember::Full => return Outcome::ReplayCacheFull,
        }
        // The local cache is the fast first filter: only a nonce new to this replica costs a
        // round trip. The claim lives until the last second the message could pass the clock.
        if let Some(shared) = &self.shared {
            let ttl = u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0) + 1;
            match shared.claim(kid, nonce, ttl) {
                Claim::Fresh => {}
                Claim::Seen => return Outcome::Replayed,
                Claim::Unavailable(why) => return Outcome::ReplayStoreDown(why),
            }
        }
        Outcome::Valid {
            kid: kid.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig::keys::kid_of;
    use crate::sig::message_scheme::sign_value;
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    const NOW: i64 = 1_767_225_600;
    const NONCE: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    fn client() -> SigningKey {
        SigningKey::from_bytes(&[1u8; 32])
    }

    fn server() -> SigningKey {
        SigningKey::from_bytes(&[2u8; 32])
    }

    fn setup(mode: Mode, capacity: usize) -> (Verifier, Arc<ManualClock>) {
        let mut keys = TrustedKeys::new();
        keys.insert("laptop", KeyRole::Client, client().verifying_key())
            .unwrap();
        keys.insert("fs", KeyRole::Server, server().verifying_key())
            .unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let config = VerifierConfig {
            mode,
            window_secs: 300,
            replay_capacity: capacity,
        };
        (Verifier::new(config, Arc::new(keys), clock.clone()), clock)
    }

    const FS: Expect<'static> = Expect {
        role: KeyRole::Client,
        audience: "fs",
    };

    fn call(id: i64) -> Value {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/w/a"}}})
    }

    fn nonce(i: u8) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([i; 16])
    }

    #[test]
    fn valid_then_replayed() {
        let (v, clock) = setup(Mode::Enforce, 10);
        let signed = sign_value(&call(1), &client(), "fs", NOW, NONCE).unwrap();
        assert_eq!(
            v.check_message(&signed, FS),
            Outcome::Valid {
                kid: kid_of(&client().verifying_key())
            }
        );
        clock.advance(5); // SIG-04: the same bytes 5 s later
        let again = v.check_message(&signed, FS);
        assert_eq!(again, Outcome::Replayed);
        assert!(v.refuses(&again));
    }

    /// `[cluster]`: a claim another replica made refuses here; an unreachable store in
    /// enforce mode refuses with its own reason; the local cache answers first.
    #[test]
    fn shared_replay_claims_come_after_the_local_cache() {
        use crate::sig::replay::{Claim, SharedReplay};
        use std::sync::Mutex;
        struct Fake(Mutex<Vec<(String, Vec<u8>, u64)>>, Claim);
        impl SharedReplay for Fake {
            fn claim(&self, kid: &str, nonce: &[u8], ttl: u64) -> Claim {
                self.0
                    .lock()
                    .unwrap()
                    .push((kid.into(), nonce.to_vec(), ttl));
                self.1.clone()
            }
        }
        let signed = sign_value(&call(1), &client(), "fs", NOW - 100, NONCE).unwrap();
        for (answer, expected) in [
            (Claim::Fresh, None),
            (Claim::Seen, Some(Outcome::Replayed)),
            (
                Claim::Unavailable("connection refused".into()),
                Some(Outcome::ReplayStoreDown("connection refused".into())),
            ),
        ] {
            let fake = Arc::new(Fake(Mutex::new(vec![]), answer));
            let (v, _) = setup(Mode::Enforce, 10);
            let v = v.with_shared_replay(fake.clone());
            let got = v.check_message(&signed, FS);
            match &expected {
                None => assert!(got.is_valid(), "{got:?}"),
                Some(o) => {
                    assert_eq!(&got, o);
                    assert_eq!(got.code(), Some(-32012));
                    assert!(v.refuses(&got));
                }
            }
            // Claimed for the rest of the window: ts + 300 - now (+1).
            let calls = fake.0.lock().unwrap().clone();
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].2, 201);
            // A second sighting is refused by the local cache without asking the store.
            assert_eq!(v.check_message(&signed, FS), Outcome::Replayed);
            assert_eq!(fake.0.lock().unwrap().len(), 1);
        }
        assert!(Outcome::ReplayStoreDown("x".into())
            .reason()
            .contains("unreachable"));
    }

    #[test]
    fn http_scheme_checks() {
        let (v, _) = setup(Mode::Enforce, 10);
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let headers = http_scheme::sign(&client(), "fs", body, NOW, NONCE);
        let wrong_route = Expect {
            role: KeyRole::Client,
            audience: "github",
        };
        assert!(matches!(
            v.check_http(&headers, body, wrong_route),
            Outcome::Invalid(_)
        ));
        assert!(v.check_http(&headers, body, FS).is_valid());
        assert_eq!(v.check_http(&headers, body, FS), Outcome::Replayed);
        assert_eq!(
            v.check_http(&HttpSigHeaders::default(), body, FS),
            Outcome::Missing
        );
    }

    #[test]
    fn window_edges() {
        let (v, _) = setup(Mode::Enforce, 10);
        let at = |ts: i64, n: u8| {
            v.check_message(
                &sign_value(&call(1), &client(), "fs", ts, &nonce(n)).unwrap(),
                FS,
            )
        };
        assert!(at(NOW - 300, 1).is_valid());
        assert!(at(NOW + 300, 2).is_valid());
        assert_eq!(
            at(NOW - 301, 3),
            Outcome::Expired {
                skew: 301,
                window_secs: 300
            }
        ); // SIG-02
        assert_eq!(
            at(NOW + 301, 4),
            Outcome::Expired {
                skew: -301,
                window_secs: 300
            }
        );
        assert_eq!(at(NOW - 301, 3).code(), Some(-32011));
    }

    #[test]
    fn key_role_and_audience() {
        let (v, _) = setup(Mode::Enforce, 10);
        let by_server = sign_value(&call(1), &server(), "fs", NOW, NONCE).unwrap();
        assert!(matches!(
            v.check_message(&by_server, FS),
            Outcome::WrongRole { .. }
        ));
        let as_server = Expect {
            role: KeyRole::Server,
            audience: "fs",
        };
        assert!(v.check_message(&by_server, as_server).is_valid());
        let stranger = sign_value(
            &call(1),
            &SigningKey::from_bytes(&[9u8; 32]),
            "fs",
            NOW,
            NONCE,
        )
        .unwrap();
        assert!(matches!(
            v.check_message(&stranger, FS),
            Outcome::UnknownKey { .. }
        ));
        let other_aud = sign_value(&call(1), &client(), "github", NOW, &nonce(7)).unwrap();
        let out = v.check_message(&other_aud, FS);
        assert!(matches!(out, Outcome::WrongAudience { .. }));
        assert_eq!(out.code(), Some(-32010));
    }

    #[test]
    fn forged_messages_do_not_burn_nonces() {
        let (v, _) = setup(Mode::Enforce, 10);
        let good = sign_value(&call(1), &client(), "fs", NOW, NONCE).unwrap();
        let mut forged = good.clone();
        forged["id"] = json!(2);
        assert!(matches!(v.check_message(&forged, FS), Outcome::Invalid(_)));
        assert!(v.replay_cache().is_empty());
        assert!(v.check_message(&good, FS).is_valid());
    }

    #[test]
    fn replay_cache_evicts_and_fails_closed() {
        let (v, clock) = setup(Mode::Enforce, 2);
        let msg =
            |n: u8| sign_value(&call(1), &client(), "fs", clock.now_unix(), &nonce(n)).unwrap();
        assert!(v.check_message(&msg(1), FS).is_valid());
        assert!(v.check_message(&msg(2), FS).is_valid());
        assert_eq!(v.check_message(&msg(3), FS), Outcome::ReplayCacheFull);
        assert_eq!(v.check_message(&msg(3), FS).code(), Some(-32012));
        clock.advance(301); // entries for ts = NOW expire after NOW + 300
        assert!(v.check_message(&msg(3), FS).is_valid());
        assert_eq!(v.replay_cache().len(), 1);
    }

    #[test]
    fn modes() {
        let (off, _) = setup(Mode::Off, 10);
        assert_eq!(off.check_message(&call(1), FS), Outcome::Skipped);
        assert!(!off.refuses(&Outcome::Missing));
        let (audit, _) = setup(Mode::Audit, 10);
        let out = audit.check_message(&call(1), FS);
        assert_eq!(out, Outcome::Missing);
        assert!(!audit.refuses(&out));
        let (enforce, _) = setup(Mode::Enforce, 10);
        assert!(enforce.refuses(&enforce.check_message(&call(1), FS)));
        assert_eq!(VerifierConfig::default().window_secs, 300);
        assert_eq!(Mode::default(), Mode::Audit);
        assert_eq!("enforce".parse::<Mode>(), Ok(Mode::Enforce));
        assert!("Enforce".parse::<Mode>().is_err());
    }
}
