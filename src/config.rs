//! `proxy.toml` + `MCP_WARDEN_<SECTION>_<KEY>` environment + flags → one validated `Config`.
//!
//! Only this module knows TOML. Everything is checked here, at start, so the request path never
//! meets a stringly-typed setting; an error names the key path and (for the file) its line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod cluster_section;
pub mod lint;
mod sections;

pub use cluster_section::ClusterSection;
pub use sections::*;

/// Where configuration values come from besides the file. Tests pass a map; `main` passes the
/// process environment. Nothing else reads the environment.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)>;
}

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect()
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub proxy: ProxySection,
    pub identity: IdentitySection,
    pub signatures: SignaturesSection,
    pub policy: PolicySection,
    pub pins: PinsSection,
    pub audit: AuditSection,
    pub telemetry: TelemetrySection,
    pub admin: AdminSection,
    pub serve: ServeSection,
    pub inference: InferenceSection,
    pub cluster: ClusterSection,
    pub servers: Vec<ServerSection>,
}

/// A configuration error, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `signatures.mode`, `servers[1].name`, or the environment variable.
    pub key: String,
    pub line: Option<usize>,
    pub reason: String,
    pub file: Option<PathBuf>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) const ENV_PREFIX: &str = "MCP_WARDEN_";
const SECTIONS: &[&str] = &[
    "proxy",
    "identity",
    "signatures",
    "policy",
    "pins",
    "audit",
    "telemetry",
    "admin",
    "serve",
    "inference",
    "cluster",
];

impl Config {
    /// Load from an optional file, then apply environment overrides, then validate.
    pub fn load(file: Option<&Path>, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let (text, path) = match file {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(t) => (t, Some(p.to_owned())),
                Err(e) => {
                    return Err(ConfigError {
                        key: String::new(),
                        line: None,
                        reason: format!("cannot read config file: {e}"),
                        file: Some(p.to_owned()),
                    })
                }
            },
            None => (String::new(), None),
        };
        Self::from_text(&text, env).map_err(|mut e| {
            e.file = path;
            e
        })
    }

    /// Parse a config text (empty: all defaults) with environment overrides.
    pub fn from_text(text: &str, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            key: String::new(),
            line: e.span().map(|s| line_of(text, s.start)),
            reason: e.message().to_owned(),
            file: None,
        })?;
        let mut overridden: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in env.vars_with_prefix(ENV_PREFIX) {
            if let Some((section, key)) = split_env_name(&name) {
                let entry = table
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = entry {
                    t.insert(key.clone(), env_value(&value));
                    overridden.insert(format!("{section}.{key}"), name);
                }
            }
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let reason = e.inner().message().to_owned();
                match overridden.get(&key) {
                    Some(var) => ConfigError {
                        key: var.clone(),
                        line: None,
                        reason,
                        file: None,
                    },
                    None => ConfigError {
                        line: locate(text, &key),
                        key,
                        reason,
                        file: None,
                    },
                }
            })?;
        config.validate().map_err(|(key, reason)| ConfigError {
            line: locate(text, &key),
            key,
            reason,
            file: None,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, r: &str| Err((k.to_owned(), r.to_owned()));
        if self.proxy.max_message_bytes < 1024 {
            return bad("proxy.max_message_bytes", "must be at least 1024 bytes");
        }
        if self.proxy.max_keys_per_object == 0 {
            return bad("proxy.max_keys_per_object", "must be at least 1");
        }
        if self.signatures.window_secs == 0 {
            return bad("signatures.window_secs", "must be greater than 0");
        }
        let t = &self.policy.risk_thresholds;
        for (k, v) in [("low", t.low), ("medium", t.medium), ("high", t.high)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(
                    &format!("policy.risk_thresholds.{k}"),
                    "must be between 0 and 1",
                );
            }
        }
        let sv = &self.serve;
        for (k, v) in [
            ("serve.header_read_timeout_ms", sv.header_read_timeout_ms),
            (
                "serve.max_connections_per_client",
                sv.max_connections_per_client as u64,
            ),
            ("serve.max_streams", sv.max_streams as u64),
            ("serve.max_sessions", sv.max_sessions as u64),
            (
                "serve.max_sessions_per_client",
                sv.max_sessions_per_client as u64,
            ),
            ("serve.body_timeout_secs", sv.body_timeout_secs),
            ("serve.session_idle_secs", sv.session_idle_secs),
            ("inference.max_tokens_cap", self.inference.max_tokens_cap),
            ("inference.timeout_secs", self.inference.timeout_secs),
            (
                "inference.max_concurrent",
                self.inference.max_concurrent as u64,
            ),
        ] {
            if v == 0 {
                return bad(k, "must be greater than 0");
            }
        }
        for (i, s) in self.servers.iter().enumerate() {
            if s.name.is_empty() {
                return bad(&format!("servers[{i}].name"), "must not be empty");
            }
            if s.command.is_empty() == s.url.is_empty() {
                return bad(
                    &format!("servers[{i}]"),
                    "set exactly one of command or url",
                );
            }
            if !s.sampling_rate.is_empty() {
                if let Err(e) = crate::policy::Rate::parse(&s.sampling_rate) {
                    return bad(&format!("servers[{i}].sampling_rate"), &e);
                }
            }
            if s.sampling == SamplingRoute::Backend && self.inference.backend.trim().is_empty() {
                return bad(
                    &format!("servers[{i}].sampling"),
                    "\"backend\" needs inference.backend (the backend's URL)",
                );
            }
            if !s.headers.is_empty() && s.url.is_empty() {
                return bad(
                    &format!("servers[{i}].headers"),
                    "only an url upstream takes headers",
                );
            }
            for (k, v) in &s.headers {
                let key = format!("servers[{i}].headers.{k}");
                if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                    return bad(&key, "is not a valid HTTP header name");
                }
                if hyper::header::HeaderValue::from_str(v).is_err() {
                    return bad(&key, "must be visible ASCII (no line breaks)");
                }
            }
        }
        self.cluster.validate()?;
        for (i, k) in self.identity.trusted_keys.iter().enumerate() {
            let raw = k.public_key.trim_start_matches("ed25519:");
            use base64::Engine;
            match base64::engine::general_purpose::STANDARD.decode(raw) {
                Ok(b) if b.len() == 32 => {}
                _ => {
                    return bad(
                        &format!("identity.trusted_keys[{i}].public_key"),
                        "must be the standard base64 of 32 raw Ed25519 bytes",
                    )
                }
            }
        }
        Ok(())
    }

    /// The per-server settings for `name`, if configured.
    pub fn server(&self, name: &str) -> Option<&ServerSection> {
        self.servers.iter().find(|s| s.name == name)
    }
}

/// `MCP_WARDEN_SIGNATURES_WINDOW_SECS` → (`signatures`, `window_secs`). `MCP_WARDEN_STATE` and
/// unknown sections are not config keys.
pub(crate) fn split_env_name(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
    let (section, key) = rest.split_once('_')?;
    SECTIONS
        .contains(&section)
        .then(|| (section.to_owned(), key.to_owned()))
}

fn env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = v.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_owned())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Best-effort line of a key path like `signatures.mode` in the file text: the `key =` line
/// inside the `[section]` table, or the section header itself.
fn locate(text: &str, path: &str) -> Option<usize> {
    let mut parts = path.split('.');
    let section = parts.next()?.split('[').next()?;
    let key = parts.next();
    let mut in_section = false;
    let mut header_line = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let name = t.trim_matches(|c| c == '[' || c == ']').trim();
            in_section = name == section || name.starts_with(&format!("{section}."));
            if in_section && header_line.is_none() {
                header_line = Some(i + 1);
            }
            continue;
        }
        if in_section {
            if let Some(k) = key {
                let k = k.split('[').next().unwrap_or(k);
                if t.split('=').next().map(str::trim) == Some(k) {
                    return Some(i + 1);
                }
            }
        }
    }
    header_line
}

/// The state directory: `$MCP_WARDEN_STATE`, else `$XDG_STATE_HOME/mcp-warden`, else
/// `~/.local/state/mcp-warden`.
pub fn state_dir(env: &dyn EnvSource) -> PathBuf {
    if let Some(s) = env.var("MCP_WARDEN_STATE").filter(|s| !s.is_empty()) {
        return PathBuf::from(s);
    }
    if let Some(x) = env.var("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return Path::new(&x).join("mcp-warden");
    }
    let home = env.var("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join(".local/state/mcp-warden")
}

/// Resolve a configured path against the state dir (absolute paths stay as they are).
pub fn resolve(state: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        state.join(p)
    }
}

#[cfg(test)]
mod tests;
