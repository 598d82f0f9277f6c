//! The request-path checks beyond the codec, built once from the config and shared by every
//! message of a session: signature verifier, trust recorder, and (as they land) pins, policy,
//! rate limits and approvals. Each is optional so that tests and `mode = "off"` pay nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::approval::ApprovalQueue;
use crate::config::{Config, KeyRoleName, SamplingRoute, SignatureMode};
use crate::inference::{Backend, BackendConfig};
use crate::pins::{poison_scanner, Baseline, BaselineConfig, OnDrift, Origin, PinStore};
use crate::policy::{register_sighup, PolicyHandle, RateLimiter, Watcher};
use crate::sig::keys::{KeyRole, TrustedKeys};
use crate::sig::verifier::{Clock, Mode, Verifier, VerifierConfig};
use crate::trust::{Flusher, TrustRecorder, TrustStore};

#[derive(Default)]
pub struct Guards {
    /// `None` when `signatures.mode = "off"`.
    pub verifier: Option<Verifier>,
    pub trust: Option<Arc<TrustRecorder>>,
    /// `[policy] risk_thresholds`: the trust each risk needs (the gate is `policy_step.rs`).
    pub thresholds: crate::config::RiskThresholds,
    /// Capability baseline of this server; `None` only in tests.
    pub pins: Option<Arc<Baseline>>,
    /// The policy in force (hot-reloaded); `None` only in tests.
    pub policy: Option<Arc<PolicyHandle>>,
    pub limiter: RateLimiter,
    /// Where calls that need a human wait; `None`: they fail closed at once.
    pub approvals: Option<ApprovalQueue>,
    /// The server's command line, for `$SERVER_ARGS` in policies.
    pub server_argv: Vec<String>,
    /// `audit.on_failure`: refuse (default) or forward a message whose record cannot be written.
    pub audit_on_failure: crate::audit::OnFailure,
    /// `audit.log_arguments`: what of a call's arguments its record keeps besides the digest.
    pub log_arguments: crate::config::LogArguments,
    /// Counters for the admin port's `/metrics`; set by the command that runs the admin port.
    pub metrics: Option<Arc<crate::admin::Metrics>>,
    /// `builtin.proxy_state`: where the proxy keeps its own state (no argument may name it).
    pub proxy_state: crate::checks::proxy_state::ProtectedPaths,
    /// Where this server's `sampling/createMessage` goes (`[[servers]] sampling`).
    pub sampling: SamplingRoute,
    /// The `[inference]` backend, when one is configured.
    pub inference: Option<Arc<Backend>>,
    /// `[[servers]] sampling_rate`: routed sampling requests allowed (besides the default rate
    /// of every server request).
    pub sampling_rate: Option<crate::policy::Rate>,
    /// `[[servers]] sampling_tokens_per_day`.
    pub token_budget: Option<Arc<crate::inference::TokenBudget>>,
    /// Whether the transport can carry a request the proxy retries itself (a modern
    /// `input_required` fulfilled by the backend): every transport does (`serve`'s HTTP
    /// upstreams through `transport/http/retry.rs`).
    pub retry_input_requests: bool,
    _policy_watcher: Option<Watcher>,
    /// Keeps the trust flusher thread alive as long as the guards live.
    _flusher: Option<Flusher>,
}

impl Guards {
    /// A call's arguments as its audit record keeps them (`audit.log_arguments`): nothing
    /// besides the digest by default, secrets replaced (`redacted`), or as sent (`full`).
    pub fn logged_arguments(
        &self,
        raw: Option<&serde_json::value::RawValue>,
    ) -> Option<serde_json::Value> {
        use crate::config::LogArguments;
        let parse = || serde_json::from_str::<serde_json::Value>(raw?.get()).ok();
        match self.log_arguments {
            LogArguments::Digest => None,
            LogArguments::Full => parse(),
            LogArguments::Redacted => parse().map(|mut v| {
                crate::checks::secrets::redact_json(&mut v);
                v
            }),
        }
    }

    /// Build the guards for `server` from the validated config. Errors name the config key.
    pub fn from_config(
        config: &Config,
        server: &str,
        origin: Origin,
        state: &std::path::Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Guards, String> {
        Self::from_config_with_trust(config, server, origin, state, clock, TrustStore::new(state))
    }

    /// As [`Guards::from_config`], with the trust histories in `trust` (`[cluster]`: shared by
    /// every replica) instead of the state dir.
    pub fn from_config_with_trust(
        config: &Config,
        server: &str,
        origin: Origin,
        state: &std::path::Path,
        clock: Arc<dyn Clock>,
        trust: TrustStore,
    ) -> Result<Guards, String> {
        // Read before this process records anything: history that predates it.
        let known_before = known_before(&trust, server);
        let keys = trusted_keys(config, None)?;
        let operator_keys = trusted_keys(config, Some(KeyRole::Operator))?;
        let origin_argv = match &origin {
            Origin::Command { command } => Some(command.clone()),
            Origin::Url { .. } => None,
        };
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
            trust,
            server,
            Arc::new(move || trust_clock.now_unix().max(0) as u64),
        ));
        let flusher = crate::trust::spawn_flusher(&recorder, Duration::from_secs(1))
            .map_err(|e| format!("cannot start the trust recorder: {e}"))?;
        let store = PinStore::new(crate::config::resolve(state, &config.pins.dir));
        let baseline = BaselineConfig {
            require: config.pins.require,
            require_signed: config.pins.require_signed,
            on_drift: match config.pins.on_drift {
                crate::config::OnDrift::Hold => OnDrift::Hold,
                crate::config::OnDrift::Alert => OnDrift::Alert,
            },
            operator_keys,
            known_before,
        };
        let scanner = poison_scanner(other_servers_tools(&store, server));
        let pins = Arc::new(Baseline::new(server, origin, store, baseline, scanner));
        let policy_dir = crate::config::resolve(state, &config.policy.dir);
        let policy = Arc::new(load_policy(config, &policy_dir)?);
        let watcher = watch_policy(&policy);
        let approvals = ApprovalQueue::new(
            crate::config::resolve(state, "approvals"),
            Duration::from_secs(config.policy.approval_timeout_secs),
        )
        .with_deciders(deciders(config, state)?);
        let server_argv = match &origin_argv {
            Some(argv) => argv.clone(),
            None => Vec::new(),
        };
        let t = config.policy.risk_thresholds;
        let proxy_state = protected_paths(config, state);
        let entry = config.server(server);
        let sampling = entry.map(|s| s.sampling).unwrap_or_default();
        let sampling_rate = entry
            .filter(|s| !s.sampling_rate.is_empty())
            .map(|s| crate::policy::Rate::parse(&s.sampling_rate))
            .transpose()?;
        let token_budget = entry.filter(|s| s.sampling_tokens_per_day > 0).map(|s| {
            Arc::new(crate::inference::TokenBudget::new(
                s.sampling_tokens_per_day,
            ))
        });
        let inference = BackendConfig::from_section(&config.inference, state)?
            .map(|c| Arc::new(Backend::new(c)));
        Ok(Guards {
            proxy_state,
            sampling,
            inference,
            sampling_rate,
            token_budget,
            retry_input_requests: true,
            policy: Some(policy),
            limiter: RateLimiter::new(),
            approvals: Some(approvals),
            server_argv,
            metrics: None,
            audit_on_failure: config.audit.on_failure,
            log_arguments: config.audit.log_arguments,
            _policy_watcher: watcher,
            verifier,
            trust: Some(recorder),
            thresholds: t,
            pins: Some(pins),
            _flusher: Some(flusher),
        })
    }
}

/// Whose signed approval decisions count: this proxy's identity key (the `approve` / `deny`
/// CLI and the admin API sign with it) and the configured operator keys.
fn deciders(
    config: &Config,
    state: &std::path::Path,
) -> Result<Vec<(String, ed25519_dalek::VerifyingKey)>, String> {
    let mut keys = Vec::new();
    match crate::identity::load_or_create(&crate::config::resolve(state, &config.identity.key)) {
        Ok(k) => keys.push(("identity".to_owned(), k.verifying_key())),
        // Without it only operator keys can decide; approvals still fail closed.
        Err(e) => tracing::warn!("identity key unavailable for approvals: {e}"),
    }
    for (i, k) in config.identity.trusted_keys.iter().enumerate() {
        if k.role == KeyRoleName::Operator {
            let key = crate::sig::keys::parse_public_key(&k.public_key)
                .map_err(|e| format!("identity.trusted_keys[{i}]: {e}"))?;
            keys.push((k.name.clone(), key));
        }
    }
    Ok(keys)
}

/// Whether the trust store saw this server more than ten minutes ago: then it is not new, and a
/// missing pin file is an alert rather than a first use. (Ten minutes, so that several proxies
/// started together for a new server do not take each other's first records for history.)
fn known_before(store: &TrustStore, server: &str) -> bool {
    if !store.exists(server) {
        return false;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    store
        .load(server)
        .ok()
        .and_then(|h| h.first_seen)
        .is_some_and(|first| first + 600 < now)
}

/// The proxy's own files: the state dir and every configured path that may live outside it.
/// The command adds the `--config` file it read.
fn protected_paths(
    config: &Config,
    state: &std::path::Path,
) -> crate::checks::proxy_state::ProtectedPaths {
    use crate::config::{resolve, EnvSource, ProcessEnv};
    let home = ProcessEnv
        .var("HOME")
        .filter(|h| !h.is_empty())
        .map(Into::into);
    let mut p = crate::checks::proxy_state::ProtectedPaths::new(home, std::env::current_dir().ok());
    p.protect(state);
    for configured in [
        &config.policy.dir,
        &config.pins.dir,
        &config.audit.dir,
        &config.identity.key,
        &config.admin.token_file,
    ] {
        if !configured.trim().is_empty() {
            p.protect(&resolve(state, configured));
        }
    }
    p
}

/// The configured trusted keys, all of them or only those of one role.
pub fn trusted_keys(config: &Config, only: Option<KeyRole>) -> Result<TrustedKeys, String> {
    let mut keys = TrustedKeys::new();
    for (i, k) in config.identity.trusted_keys.iter().enumerate() {
        let role = match k.role {
            KeyRoleName::Client => KeyRole::Client,
            KeyRoleName::Server => KeyRole::Server,
            KeyRoleName::Operator => KeyRole::Operator,
        };
        if only.is_some_and(|r| r != role) {
            continue;
        }
        keys.insert_text(&k.name, role, &k.public_key)
            .map_err(|e| format!("identity.trusted_keys[{i}]: {e}"))?;
    }
    Ok(keys)
}

/// Tool names pinned for the other servers: a description that names one of them is shadowing.
fn other_servers_tools(store: &PinStore, server: &str) -> Vec<String> {
    let mut names = Vec::new();
    for other in store.servers().unwrap_or_default() {
        // Its own variants (`server@label`) are the same server.
        if crate::pins::variant::is_family(&other, server) {
            continue;
        }
        // The pin file lists tools as an object keyed by name.
        if let Some(tools) = store
            .read(&other)
            .ok()
            .and_then(|s| s.pin)
            .and_then(|p| p.get("tools").cloned())
        {
            if let Some(map) = tools.as_object() {
                names.extend(map.keys().cloned());
            }
        }
    }
    names
}

/// The built-in packs (unless `policy.builtin = false`) plus the policy directory's files, which
/// add to them or replace a pack of the same file name. A directory the operator named that does
/// not exist is an error, never a silent fall-back.
fn load_policy(config: &Config, dir: &std::path::Path) -> Result<PolicyHandle, String> {
    let configured = config.policy.dir != crate::config::PolicySection::default().dir;
    if configured && !dir.is_dir() {
        return Err(format!(
            "policy.dir {}: no such directory (create it, or remove the key to use the built-in packs)",
            dir.display()
        ));
    }
    PolicyHandle::open(dir, config.policy.builtin).map_err(|e| format!("policy: {e}"))
}

/// Reload on file change and on SIGHUP; a broken file keeps the previous policy in force.
fn watch_policy(handle: &Arc<PolicyHandle>) -> Option<Watcher> {
    if !handle.dir().is_dir() {
        return None;
    }
    let sighup = register_sighup().ok();
    let watched = handle.watch(Duration::from_millis(500), sighup, |result| match result {
        Ok(crate::policy::ReloadOutcome::Applied { new, .. }) => {
            tracing::warn!("policy reloaded: version {}", &new[..new.len().min(16)])
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("mcp-warden: policy change refused, previous policy stays in force: {e}")
        }
    });
    watched.ok()
}
