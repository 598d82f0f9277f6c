//! The request-path checks beyond the codec, built once from the config and shared by every
//! message of a session: signature verifier, trust recorder, and (as they land) pins, policy,
//! rate limits and approvals. Each is optional so that tests and `mode = "off"` pay nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, KeyRoleName, SignatureMode};
use crate::sig::keys::{KeyRole, TrustedKeys};
use crate::sig::verifier::{Clock, Mode, Verifier, VerifierConfig};
use crate::trust::{Flusher, Thresholds, TrustRecorder, TrustStore};

#[derive(Default)]
pub struct Guards {
    /// `None` when `signatures.mode = "off"`.
    pub verifier: Option<Verifier>,
    pub trust: Option<Arc<TrustRecorder>>,
    pub thresholds: Thresholds,
    /// Keeps the trust flusher thread alive as long as the guards live.
    _flusher: Option<Flusher>,
}

impl Guards {
    /// Build the guards for `server` from the validated config. Errors name the config key.
    pub fn from_config(
        config: &Config,
        server: &str,
        state: &std::path::Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Guards, String> {
        let mut keys = TrustedKeys::new();
        for (i, k) in config.identity.trusted_keys.iter().enumerate() {
            let role = match k.role {
                KeyRoleName::Client => KeyRole::Client,
                KeyRoleName::Server => KeyRole::Server,
                KeyRoleName::Operator => KeyRole::Operator,
            };
            keys.insert_text(&k.name, role, &k.public_key)
                .map_err(|e| format!("identity.trusted_keys[{i}]: {e}"))?;
        }
        let mode = match config.signatures.mode {
            SignatureMode::Off => Mode::Off,
            SignatureMode::Audit => Mode::Audit,
            SignatureMode::Enforce => Mode::Enforce,
        };
        let verifier = (mode != Mode::Off).then(|| {
            let cfg = VerifierConfig {
                mode,
                window_secs: config.signatures.window_secs,
                ..VerifierConfig::default()
            };
            Verifier::new(cfg, Arc::new(keys), clock.clone())
        });
        let trust_clock = clock.clone();
        let recorder = Arc::new(TrustRecorder::new(
            TrustStore::new(state),
            server,
            Arc::new(move || trust_clock.now_unix().max(0) as u64),
        ));
        let flusher = crate::trust::spawn_flusher(&recorder, Duration::from_secs(1))
            .map_err(|e| format!("cannot start the trust recorder: {e}"))?;
        let t = config.policy.risk_thresholds;
        Ok(Guards {
            verifier,
            trust: Some(recorder),
            thresholds: Thresholds {
                low: t.low,
                medium: t.medium,
                high: t.high,
            },
            _flusher: Some(flusher),
        })
    }
}
