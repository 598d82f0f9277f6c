//! Whether the shared store is reachable, and what that means: `/readyz` (enforce: not ready
//! while down), and exactly one alert record per outage (plus one record at recovery), written
//! by whichever caller first sees the change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::admin::Metrics;
use crate::audit::{AuditLog, Decision, Direction, Record};

/// Where the outage and recovery records go (set by `serve` once its audit log is open).
pub struct Reporter {
    pub audit: Arc<AuditLog>,
    pub metrics: Option<Arc<Metrics>>,
}

pub struct Health {
    /// `signatures.mode = "enforce"`: refuse while down; otherwise degrade to local state.
    fail_closed: bool,
    /// Starts false: nothing is trusted before the first successful command.
    up: AtomicBool,
    /// An outage already reported (reset at recovery).
    alerted: AtomicBool,
    last_error: Mutex<String>,
    reporter: OnceLock<Reporter>,
    replica: String,
}

impl Health {
    pub fn new(fail_closed: bool, replica: &str) -> Health {
        Health {
            fail_closed,
            up: AtomicBool::new(false),
            alerted: AtomicBool::new(false),
            last_error: Mutex::new("not connected yet".into()),
            reporter: OnceLock::new(),
            replica: replica.to_owned(),
        }
    }

    pub fn fail_closed(&self) -> bool {
        self.fail_closed
    }

    pub fn set_reporter(&self, r: Reporter) {
        let _ = self.reporter.set(r);
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A command worked.
    pub fn mark_up(&self) {
        if !self.up.swap(true, Ordering::SeqCst) && self.alerted.swap(false, Ordering::SeqCst) {
            tracing::warn!("cluster store reachable again");
            self.report(
                "cluster.recovered",
                false,
                "the shared store (Redis) is reachable again; cluster-wide state is back in force"
                    .into(),
            );
        }
    }

    /// A command or a connection failed.
    pub fn mark_down(&self, why: &str) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = why.to_owned();
        self.up.store(false, Ordering::SeqCst);
        if self.alerted.swap(true, Ordering::SeqCst) {
            return;
        }
        let consequence = if self.fail_closed {
            "signatures.mode is enforce: signed requests, cluster rate limits and approvals are \
             refused until it is back, and /readyz reports not ready"
        } else {
            "audit mode: this replica goes on with its local replay cache and rate limits only \
             (replays across replicas are not caught until it is back)"
        };
        let reason = format!(
            "the shared store (Redis) is unreachable from replica {}: {why}; {consequence}",
            self.replica
        );
        tracing::error!("{reason}");
        self.report("cluster.degraded", true, reason);
    }

    /// `/readyz`: not ready while down, when failing closed (a replica that refuses everything
    /// should not get traffic); a degraded audit-mode replica still serves.
    pub fn readiness(&self) -> Result<(), String> {
        if self.fail_closed && !self.is_up() {
            return Err(format!(
                "cluster store (Redis) unreachable: {}",
                self.last_error()
            ));
        }
        Ok(())
    }

    fn report(&self, event: &str, alert: bool, reason: String) {
        let Some(r) = self.reporter.get() else {
            return;
        };
        let mut rec = Record::new("-", "cluster", Direction::Proxy, 0);
        rec.event = event.into();
        rec.audit_id = r.audit.next_audit_id("cluster");
        rec.decision = if alert {
            Decision::Error
        } else {
            Decision::Allow
        };
        rec.rule = Some("cluster.redis".into());
        rec.reason = Some(reason);
        rec.alert = alert;
        if let Some(m) = &r.metrics {
            m.record(&rec);
        }
        if let Err(e) = r.audit.write(rec) {
            tracing::error!("cluster health record not written: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(path: &std::path::Path) -> Vec<(String, bool)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["server"] == "cluster")
            .map(|v| (v["event"].as_str().unwrap().to_owned(), v["alert"] == true))
            .collect()
    }

    #[test]
    fn one_alert_per_outage_and_readiness_only_when_failing_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let audit = AuditLog::open_file(&path, crate::audit::Fsync::Always).unwrap();
        let metrics = Arc::new(Metrics::new());
        let h = Health::new(true, "r1");
        h.set_reporter(Reporter {
            audit: audit.clone(),
            metrics: Some(metrics.clone()),
        });
        assert!(h.readiness().is_err(), "not ready before the first answer");
        h.mark_up();
        assert!(h.readiness().is_ok());
        for _ in 0..5 {
            h.mark_down("connection refused");
        }
        let why = h.readiness().unwrap_err();
        assert!(why.contains("connection refused"), "{why}");
        h.mark_up();
        h.mark_up();
        h.mark_down("timed out");
        audit.flush().unwrap();
        assert_eq!(
            events(&path),
            vec![
                ("cluster.degraded".to_owned(), true),
                ("cluster.recovered".to_owned(), false),
                ("cluster.degraded".to_owned(), true),
            ]
        );
        assert_eq!(metrics.alerts_total(), 2);
        // Audit mode: a degraded replica still takes traffic.
        let soft = Health::new(false, "r2");
        soft.mark_down("connection refused");
        assert!(soft.readiness().is_ok());
    }
}
