//! `[cluster]` (issue 14): several `serve` replicas behind one Service share their security
//! state on Redis (or Valkey): replay claims, rate limits and approvals. Off by default.
//!
//! | file           | job                                                                  |
//! |----------------|----------------------------------------------------------------------|
//! | `conn.rs`      | blocking connections, per-command timeout, reconnect with backoff    |
//! | `health.rs`    | up/down, `/readyz`, one alert record per outage, one at recovery      |
//! | `replay.rs`    | `(kid, nonce)` claimed with `SET NX PX window` behind the local cache |
//! | `rates.rs`     | cluster-wide GCRA in a Lua script behind the local limiter            |
//! | `approvals.rs` | tickets and decisions in Redis, waiters woken by pub/sub              |
//! | `trust.rs`     | trust histories merged by a Lua script: every replica scores the same |
//!
//! Redis down: with `signatures.mode = "enforce"` every check that needs it refuses (a check
//! that cannot decide refuses) and `/readyz` is not ready; otherwise the replica degrades to
//! its local state with one alert. A health thread pings once a second, so an outage and the
//! recovery are seen without traffic.
//!
//! Legacy (stateful) sessions stay on the replica that runs their upstream process: route
//! sticky on `Mcp-Session-Id` (see `deploy/kubernetes/gateway/`). The modern era is stateless
//! and works on any replica.

mod approvals;
mod conn;
pub mod health;
mod rates;
mod replay;
mod trust;

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::approval::TicketStore;
use crate::config::ClusterSection;
use crate::policy::SharedRates;
use crate::sig::SharedReplay;

pub use health::{Health, Reporter};

pub struct Cluster {
    conn: Arc<Conn>,
    prefix: String,
    tickets: Arc<approvals::RedisTickets>,
    replica: String,
}

use conn::Conn;

impl Cluster {
    /// Connects lazily: a Redis that is down at start is an outage like any other (enforce:
    /// not ready; audit: local state and an alert). Errors are config errors only.
    pub fn start(
        section: &ClusterSection,
        state: &Path,
        fail_closed: bool,
    ) -> Result<Arc<Cluster>, String> {
        let url = with_password(section, state)?;
        let client = redis::Client::open(url.as_str())
            .map_err(|e| format!("cluster.redis_url: {}", redact(&e.to_string())))?;
        let replica = if section.replica.trim().is_empty() {
            host_name()
        } else {
            section.replica.trim().to_owned()
        };
        let health = Arc::new(Health::new(fail_closed, &replica));
        let conn = Arc::new(Conn::new(
            client,
            Duration::from_millis(section.timeout_ms),
            health,
        ));
        let prefix = section.key_prefix.clone();
        let tickets = approvals::RedisTickets::new(conn.clone(), prefix.clone());
        tickets
            .spawn_subscriber()
            .map_err(|e| format!("cannot start the cluster subscriber: {e}"))?;
        let cluster = Arc::new(Cluster {
            conn,
            prefix,
            tickets,
            replica,
        });
        spawn_pinger(Arc::downgrade(&cluster))
            .map_err(|e| format!("cannot start the cluster health thread: {e}"))?;
        Ok(cluster)
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn health(&self) -> &Arc<Health> {
        &self.conn.health
    }

    /// One `PING`: whether the store answers now (also what moves the health state).
    pub fn ping(&self) -> Result<(), String> {
        self.conn
            .run(|c| redis::cmd("PING").query::<String>(c))
            .map(|_| ())
    }

    pub fn replay(&self) -> Arc<dyn SharedReplay> {
        Arc::new(replay::RedisReplay {
            conn: self.conn.clone(),
            prefix: self.prefix.clone(),
        })
    }

    pub fn rates(&self) -> Arc<dyn SharedRates> {
        Arc::new(rates::RedisRates::new(
            self.conn.clone(),
            self.prefix.clone(),
        ))
    }

    pub fn tickets(&self) -> Arc<dyn TicketStore> {
        self.tickets.clone()
    }

    pub fn trust(&self) -> Arc<dyn crate::trust::SharedTrust> {
        Arc::new(trust::RedisTrust::new(
            self.conn.clone(),
            self.prefix.clone(),
        ))
    }
}

/// Pings once a second while the cluster lives: outages and recoveries are noticed (and the
/// connection re-made, on the backoff schedule) without waiting for traffic.
fn spawn_pinger(weak: Weak<Cluster>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("cluster-health".into())
        .spawn(move || loop {
            match weak.upgrade() {
                Some(c) => {
                    let _ = c.ping();
                }
                None => return,
            }
            std::thread::sleep(Duration::from_secs(1));
        })
        .map(|_| ())
}

/// The URL with the password of `password_file` in it (percent-encoded), when one is set.
fn with_password(section: &ClusterSection, state: &Path) -> Result<String, String> {
    let url = section.redis_url.trim().to_owned();
    if section.password_file.trim().is_empty() {
        return Ok(url);
    }
    let path = crate::config::resolve(state, section.password_file.trim());
    let pw = std::fs::read_to_string(&path)
        .map_err(|e| format!("cluster.password_file {}: {e}", path.display()))?;
    let pw: String = pw
        .trim()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("cluster.redis_url: no scheme")?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    Ok(format!("{scheme}://:{pw}@{rest}"))
}

/// Never print a password from a URL in an error.
fn redact(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &text[..s], &text[at..]),
        _ => text.to_owned(),
    }
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL either way.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file_goes_into_the_url_encoded_and_never_into_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cr:t@/x\n").unwrap();
        let section = ClusterSection {
            redis_url: "redis://old:pw@redis:6379/0".into(),
            password_file: "pw".into(),
            ..ClusterSection::default()
        };
        assert_eq!(
            with_password(&section, dir.path()).unwrap(),
            "redis://:s3cr%3At%40%2Fx@redis:6379/0"
        );
        assert_eq!(
            redact("bad url redis://:secret@host:1"),
            "bad url redis://***@host:1"
        );
    }
}
