//! Drops are reported, not hidden: once per interval with any, one audit record
//! (`telemetry.dropped`, counts in `detail`) and the `mcp_warden.telemetry.dropped` counter.
//! Its own thread, so a stalled export (which holds the worker) does not delay the report.

use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::metrics::Counter;
use opentelemetry::KeyValue;

use super::queue::Drops;
use crate::audit::{AuditLog, Decision, Direction, Record};

pub struct Reporter {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reporter {
    pub fn start(
        audit: Weak<AuditLog>,
        server: &str,
        drops: Arc<Drops>,
        counter: Counter<u64>,
        interval: Duration,
    ) -> Reporter {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let server = server.to_owned();
        let thread = std::thread::Builder::new()
            .name("otel-drops".into())
            .spawn(move || loop {
                let last = !matches!(rx.recv_timeout(interval), Err(RecvTimeoutError::Timeout));
                report(&audit, &server, &drops, &counter);
                if last {
                    return;
                }
            })
            .ok();
        Reporter {
            stop: Some(tx),
            thread,
        }
    }

    /// One last report, then the thread ends.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn report(audit: &Weak<AuditLog>, server: &str, drops: &Drops, counter: &Counter<u64>) {
    let (queue_full, export_failed) = drops.take();
    if queue_full + export_failed == 0 {
        return;
    }
    counter.add(queue_full, &[KeyValue::new("reason", "queue_full")]);
    counter.add(export_failed, &[KeyValue::new("reason", "export_failed")]);
    let Some(log) = audit.upgrade() else { return };
    let mut r = Record::new("", server, Direction::Proxy, 0);
    r.event = "telemetry.dropped".into();
    r.decision = Decision::Error;
    r.rule = Some("telemetry.dropped".into());
    r.reason = Some(format!(
        "{} audit records were not exported to the OTLP collector ({queue_full} queue full, {export_failed} export failed); the audit file has them all",
        queue_full + export_failed
    ));
    r.detail = Some(serde_json::json!({
        "queue_full": queue_full,
        "export_failed": export_failed,
    }));
    r.audit_id = log.next_audit_id("telemetry");
    if let Err(e) = log.write(r) {
        tracing::error!("audit write failed: {e}");
    }
}
