//! The typed sections of `proxy.toml`, with their defaults. Validation that spans keys lives in
//! `config.rs`; these are the shapes serde fills.

use serde::Deserialize;

use crate::audit::Fsync;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySection {
    pub max_message_bytes: usize,
    /// Keys allowed in one JSON object of a message; more is refused (-32600) before any other
    /// check, so a huge object cannot make strict parsing expensive.
    pub max_keys_per_object: usize,
    /// Seconds to wait for the child after closing its stdin before SIGTERM (and again before
    /// SIGKILL).
    pub shutdown_grace_secs: u64,
    /// `wrap`: confine the server with Landlock so it cannot touch the state dir (Linux). Off by
    /// default: the server then also cannot create entries directly in the state dir's
    /// ancestors ($HOME with the default state dir), see `proxy.toml`.
    pub sandbox_child: bool,
}
impl Default for ProxySection {
    fn default() -> Self {
        ProxySection {
            max_message_bytes: 4 * 1024 * 1024,
            max_keys_per_object: 4096,
            shutdown_grace_secs: 2,
            sandbox_child: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    pub key: String,
    pub sign_responses: bool,
    pub trusted_keys: Vec<TrustedKey>,
}
impl Default for IdentitySection {
    fn default() -> Self {
        IdentitySection {
            key: "identity.pem".into(),
            sign_responses: false,
            trusted_keys: vec![],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    pub name: String,
    pub public_key: String,
    pub role: KeyRoleName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRoleName {
    Client,
    Server,
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMode {
    Off,
    #[default]
    Audit,
    Enforce,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignaturesSection {
    pub mode: SignatureMode,
    pub window_secs: u64,
}
impl Default for SignaturesSection {
    fn default() -> Self {
        SignaturesSection {
            mode: SignatureMode::Audit,
            window_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    pub dir: String,
    /// The shipped packs stay in force beside the directory's files unless this is false.
    pub builtin: bool,
    pub approval_timeout_secs: u64,
    pub risk_thresholds: RiskThresholds,
}
impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            dir: "policies".into(),
            builtin: true,
            approval_timeout_secs: 60,
            risk_thresholds: RiskThresholds::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskThresholds {
    pub low: f64,
    pub medium: f64,
    pub high: f64,
}
impl Default for RiskThresholds {
    fn default() -> Self {
        RiskThresholds {
            low: 0.3,
            medium: 0.5,
            high: 0.7,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnDrift {
    #[default]
    Hold,
    Alert,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinsSection {
    pub dir: String,
    pub require: bool,
    pub require_signed: bool,
    pub on_drift: OnDrift,
}
impl Default for PinsSection {
    fn default() -> Self {
        PinsSection {
            dir: "pins".into(),
            require: false,
            require_signed: false,
            on_drift: OnDrift::Hold,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogArguments {
    #[default]
    Digest,
    Redacted,
    Full,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    pub dir: String,
    pub fsync: Fsync,
    pub checkpoint_every: u64,
    pub log_arguments: LogArguments,
    /// `refuse` (default) or `forward`: a message whose record cannot be written.
    pub on_failure: crate::audit::OnFailure,
    /// Audit files last written longer ago are removed at start-up; 0 keeps them forever.
    pub retention_days: u64,
    /// At most this many files are kept in the audit dir (the newest); 0: no limit.
    pub max_files: usize,
}
impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            dir: "audit".into(),
            fsync: Fsync::Batch,
            checkpoint_every: 1000,
            log_arguments: LogArguments::Digest,
            on_failure: crate::audit::OnFailure::Refuse,
            retention_days: 90,
            max_files: 1000,
        }
    }
}

/// OTLP export (SPEC §8 sinks, §9). The standard `OTEL_*` variables override these keys
/// (`telemetry::settings`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// OTLP/HTTP base URL (`/v1/logs` etc. appended); empty: export off.
    pub otlp_endpoint: String,
    /// `k=v,k=v` headers for every export request (e.g. an API key).
    pub headers: String,
    pub service_name: String,
    /// `k=v,k=v` resource attributes.
    pub resource_attributes: String,
    /// Batches, metrics and the drop report leave at least this often.
    pub export_interval_ms: u64,
    /// One export request may take this long.
    pub timeout_ms: u64,
    /// Audit lines waiting for the exporter; beyond this they are dropped and counted.
    pub queue: usize,
}
impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            otlp_endpoint: String::new(),
            headers: String::new(),
            service_name: "mcp-warden".into(),
            resource_attributes: String::new(),
            export_interval_ms: 5000,
            timeout_ms: 10_000,
            queue: 8192,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    pub listen: String,
    pub token_file: String,
}
impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: "127.0.0.1:9464".into(),
            token_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSection {
    pub listen: String,
    pub allowed_origins: Vec<String>,
    /// A client that has not sent its request headers within this time is disconnected.
    pub header_read_timeout_ms: u64,
    /// Open connections one client address may hold.
    pub max_connections_per_client: usize,
    /// Open SSE streams over all clients.
    pub max_streams: usize,
    /// Open sessions over all clients.
    pub max_sessions: usize,
    /// Sessions and stdio processes one client identity (its key, or its address when
    /// unsigned) may hold at once; at the cap its least recently used idle session is ended to
    /// make room, and when all are busy: 429.
    pub max_sessions_per_client: usize,
    /// A request body not complete within this time is answered 408 (slow-body clients).
    pub body_timeout_secs: u64,
    /// Pre-started processes kept ready per stdio server.
    pub pool_size: usize,
    /// A session unused for this long is ended.
    pub session_idle_secs: u64,
}
impl Default for ServeSection {
    fn default() -> Self {
        ServeSection {
            listen: "127.0.0.1:8080".into(),
            allowed_origins: vec![],
            header_read_timeout_ms: 10_000,
            max_connections_per_client: 64,
            max_streams: 1024,
            max_sessions: 1024,
            max_sessions_per_client: 16,
            body_timeout_secs: 10,
            pool_size: 2,
            session_idle_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceSection {
    /// Base URL of an OpenAI-compatible backend (`http://host:port`); empty: routing off.
    pub backend: String,
    /// A file holding the backend's bearer token (relative to the state dir); empty: none.
    pub api_key_file: String,
    /// Upper bound on `maxTokens` of a routed sampling request.
    pub max_tokens_cap: u64,
    /// One routed request, model listing included, must be answered within this time.
    pub timeout_secs: u64,
    /// Routed requests in flight at once per server; more wait (within the timeout).
    pub max_concurrent: usize,
}
impl Default for InferenceSection {
    fn default() -> Self {
        InferenceSection {
            backend: String::new(),
            api_key_file: String::new(),
            max_tokens_cap: 4096,
            timeout_secs: 60,
            max_concurrent: 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SamplingRoute {
    #[default]
    Client,
    Backend,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub name: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub route: String,
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub sampling: SamplingRoute,
    /// `sampling = "backend"`: at most this many routed requests (e.g. "30/min"); empty: the
    /// default for every server request (60/min).
    #[serde(default)]
    pub sampling_rate: String,
    /// `sampling = "backend"`: tokens (prompt + completion) per UTC day; 0: no ceiling.
    #[serde(default)]
    pub sampling_tokens_per_day: u64,
    /// Headers `serve` (and `connect`) add to every request to a `url` upstream (its
    /// credentials, e.g. `Authorization`); the client's own `Authorization` is never passed on.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// `connect` to an https URL: an extra CA bundle (PEM), and a client certificate chain and
    /// key (PEM) for servers that require mutual TLS. Relative to the state dir.
    #[serde(default)]
    pub tls_ca_file: String,
    #[serde(default)]
    pub tls_client_cert: String,
    #[serde(default)]
    pub tls_client_key: String,
}
