//! `[cluster]`: several `serve` replicas sharing one security state on Redis (or Valkey): replay
//! claims, rate limits, approvals and trust events. Off (empty `redis_url`) by default: a single
//! process keeps its in-memory state.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// `redis://[user[:password]@]host:port[/db]` or `rediss://…` (TLS). Empty: cluster off.
    /// `MCP_WARDEN_CLUSTER_REDIS_URL` overrides it, so the password can come from a Secret.
    pub redis_url: String,
    /// A file holding the Redis password (AUTH), relative to the state dir; empty: none or in
    /// the URL. Kept out of the URL so `check-config` output never shows it.
    pub password_file: String,
    /// Every key this proxy writes starts with it: several deployments can share one Redis.
    pub key_prefix: String,
    /// Connecting, and each command, must finish within this time; past it the store counts as
    /// down (enforce: refuse; audit: local state and an alert).
    pub timeout_ms: u64,
    /// The name of this replica in error messages (a session that landed on another one);
    /// empty: the host name (the pod name in Kubernetes).
    pub replica: String,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            redis_url: String::new(),
            password_file: String::new(),
            key_prefix: "mcp-warden".into(),
            timeout_ms: 500,
            replica: String::new(),
        }
    }
}

impl ClusterSection {
    pub fn enabled(&self) -> bool {
        !self.redis_url.trim().is_empty()
    }

    /// Shape errors: `(key, reason)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !self.enabled() {
            return Ok(());
        }
        let url = self.redis_url.trim();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err((
                "cluster.redis_url".into(),
                "must start with redis:// or rediss:// (TLS)".into(),
            ));
        }
        if self.timeout_ms == 0 {
            return Err(("cluster.timeout_ms".into(), "must be greater than 0".into()));
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err((
                "cluster.key_prefix".into(),
                "must be a non-empty word without spaces".into(),
            ));
        }
        Ok(())
    }
}
