//! One audit record per message that crosses `connect` (the ARCHITECTURE invariant), written to
//! the same hash-chained trail `wrap` uses.

use std::sync::Arc;

use crate::audit::{AuditLog, Decision, Direction, Record};
use crate::codec::Envelope;
use crate::errors::Rejection;

pub struct Auditor {
    log: Arc<AuditLog>,
    session: String,
    server: String,
}

/// What happened to one message.
pub enum Fate<'a> {
    Forwarded,
    Refused(&'a Rejection),
    /// Dropped without an answer (e.g. an answer to nothing pending), with the reason.
    Dropped(&'static str, String),
    /// Passed on (possibly rewritten: redacted, quarantined) with an alert: the decision, the
    /// event and the reason.
    Flagged(Decision, &'static str, String),
}

impl Auditor {
    pub fn new(log: Arc<AuditLog>, server: &str) -> Auditor {
        Auditor {
            log,
            session: crate::session::random_id(),
            server: server.to_owned(),
        }
    }

    pub fn next_id(&self) -> String {
        self.log.next_audit_id(&self.session)
    }

    pub fn flush(&self) {
        if let Err(e) = self.log.flush() {
            tracing::error!("audit flush failed: {e}");
        }
    }

    /// Writes the record; `audit_id` is the one already quoted to the client, if any.
    pub fn write(
        &self,
        direction: Direction,
        env: Option<&Envelope<'_>>,
        bytes: usize,
        fate: Fate<'_>,
        audit_id: Option<String>,
    ) {
        let mut rec = Record::new(&self.session, &self.server, direction, bytes as u64);
        rec.audit_id = audit_id.unwrap_or_else(|| self.next_id());
        if let Some(env) = env {
            rec.method = env.method.as_deref().map(str::to_owned);
            rec.id = env.id.as_ref().map(ToString::to_string);
        }
        match fate {
            Fate::Forwarded => rec.decision = Decision::Allow,
            Fate::Refused(r) => {
                rec.decision = Decision::Deny;
                rec.event = r.event.to_owned();
                rec.rule = Some(r.rule.clone());
                rec.reason = Some(r.reason.clone());
                rec.code = Some(r.code);
                rec.alert = r.alert;
            }
            Fate::Dropped(event, reason) => {
                rec.decision = Decision::Deny;
                rec.event = event.to_owned();
                rec.reason = Some(reason);
            }
            Fate::Flagged(decision, event, reason) => {
                rec.decision = decision;
                rec.event = event.to_owned();
                rec.reason = Some(reason);
                rec.alert = true;
            }
        }
        if let Err(e) = self.log.write(rec) {
            tracing::error!("audit write failed: {e}");
        }
    }
}
