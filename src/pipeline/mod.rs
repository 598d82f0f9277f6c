//! The ordered checks every message goes through, ending in a named `Verdict`.
//!
//! Transports call `from_client` / `from_server` with the raw line they read and act on the
//! verdict; they never look inside a message themselves. The order of the checks is written
//! down in `client.rs` and `server.rs` with the reason for it.
//!
//! | file        | job                                                  |
//! |-------------|------------------------------------------------------|
//! | `client.rs` | client → server: framing, envelope, ids, (policy …)   |
//! | `server.rs` | server → client: framing, ids, routing of answers     |
//! | `params.rs` | borrowed views of the few `params` members checks read |
//! | `guards.rs` | the optional checks built from config (verifier, trust, …) |
//! | `auth.rs`   | step: message-scheme signatures                       |
//! | `pins_step.rs` | step: capability baselines on calls and listings   |
//! | `policy_step.rs` | step: policy, rate limit, trust gate              |
//! | `content_step.rs` | step: redaction, quarantine, taint, elicitation  |
//! | `hold.rs`   | calls waiting for approval, and how a wait ends         |

mod auth;
mod client;
mod content_step;
mod guards;
mod hold;
mod params;
mod pins_step;
mod policy_step;
mod server;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::audit::{AuditLog, Decision, Direction, Record};
use crate::codec::{Id, Limits};
use crate::errors::{Rejection, Source, INTERNAL_ERROR};
use crate::session::Session;

pub use guards::{trusted_keys, Guards};
pub use hold::Held;

/// What the transport must do with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the original bytes on, untouched.
    Forward,
    /// Pass these bytes on instead (normalised, filtered, redacted).
    Rewrite(Vec<u8>),
    /// Do not pass it on; send this answer back to the sender.
    Answer(Vec<u8>),
    /// Pass these bytes on and also answer the sender (a batch partly refused).
    Split { forward: Vec<u8>, answer: Vec<u8> },
    /// Keep it until a human decides (approval queue); the transport waits off the hot path
    /// and then calls `Pipeline::resolve_hold`.
    Hold(Box<hold::Held>),
    /// Do not pass it on and answer nobody (unsolicited responses, garbage from the server,
    /// rejected notifications). Audited like everything else.
    Drop,
}

/// One message's verdict and the audit record that explains it.
pub struct Outcome {
    pub verdict: Verdict,
    pub record: Record,
}

/// The per-session pipeline: configuration, state, audit.
pub struct Pipeline {
    pub server: String,
    limits: Limits,
    session: Mutex<Session>,
    audit: Arc<AuditLog>,
    guards: Arc<Guards>,
    holds: hold::Holds,
}

impl Pipeline {
    pub fn new(
        server: &str,
        limits: Limits,
        audit: Arc<AuditLog>,
        guards: Arc<Guards>,
    ) -> Pipeline {
        if let Some(trust) = &guards.trust {
            trust.record(crate::trust::Observation::Session);
        }
        Pipeline {
            server: server.to_owned(),
            limits,
            session: Mutex::new(Session::new()),
            audit,
            guards,
            holds: hold::Holds::default(),
        }
    }

    pub fn guards(&self) -> &Guards {
        &self.guards
    }

    /// The transport started (or failed to start) the upstream: evidence for availability.
    pub fn upstream_started(&self, ok: bool) {
        if let Some(t) = &self.guards.trust {
            t.record(crate::trust::Observation::UpstreamStart { ok });
        }
    }

    /// The upstream is gone: stop crediting uptime, and persist what was observed.
    pub fn upstream_stopped(&self) {
        if let Some(t) = &self.guards.trust {
            t.upstream_stopped();
            if let Err(e) = t.flush() {
                tracing::warn!("trust store: {e}");
            }
        }
    }

    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn session_id(&self) -> String {
        self.session().id.clone()
    }

    fn record(&self, session: &Session, direction: Direction, bytes: usize) -> Record {
        let mut r = Record::new(&session.id, &self.server, direction, bytes as u64);
        r.audit_id = self.audit.next_audit_id(&session.id);
        r.era = session.era.label();
        r
    }

    /// A line longer than the limit arrived from `direction` and was discarded by the framer.
    pub fn oversize(&self, direction: Direction, seen: u64) -> Outcome {
        let session = self.session();
        let mut record = self.record(&session, direction, seen as usize);
        let rejection = Rejection::oversize(seen, self.limits.max_message_bytes);
        let verdict = match direction {
            // The client gets an error with id null: its id was never read.
            Direction::ClientToServer => {
                Verdict::Answer(rejection.to_response(None, &record.audit_id))
            }
            _ => Verdict::Drop,
        };
        deny(&mut record, &rejection);
        Outcome { verdict, record }
    }

    /// The upstream is gone: every client request still waiting gets an error, so no request is
    /// left without exactly one answer.
    pub fn abandon_pending(&self, why: &str) -> Vec<Outcome> {
        let mut session = self.session();
        let pending: Vec<(Id, String)> = session
            .client_pending
            .drain()
            .map(|(id, p)| (id, p.method))
            .collect();
        let mut out = Vec::new();
        for (id, method) in pending {
            let mut record = self.record(&session, Direction::ServerToClient, 0);
            let rejection = Rejection::new(
                INTERNAL_ERROR,
                "upstream.closed",
                "upstream",
                why.to_owned(),
            )
            .from(Source::Upstream);
            record.method = Some(method);
            record.id = Some(id.to_string());
            let answer = rejection.to_response(Some(&id), &record.audit_id);
            deny(&mut record, &rejection);
            record.decision = Decision::Error;
            out.push(Outcome {
                verdict: Verdict::Answer(answer),
                record,
            });
        }
        out
    }

    /// Write a record and make it durable before the message moves on.
    pub fn finish_durable(&self, mut record: Record, started: Instant) -> std::io::Result<()> {
        record.latency_us = Some(started.elapsed().as_micros() as u64);
        if let Some(m) = &self.guards.metrics {
            m.record(&record);
        }
        self.audit.write_durable(record)
    }

    /// The error for a client request refused because its audit record could not be written.
    pub fn audit_failure_answer(&self, id: Option<&str>) -> Option<Vec<u8>> {
        let session = self.session();
        let id = id?;
        let key = session
            .client_pending
            .keys()
            .find(|k| k.to_string() == id)?
            .clone();
        drop(session);
        self.session().client_pending.remove(&key);
        let r = Rejection::new(
            INTERNAL_ERROR,
            "audit.write_failed",
            "audit",
            "the audit record of this high-risk call could not be written, so it was not forwarded",
        )
        .from(Source::Internal)
        .alert();
        Some(r.to_response(Some(&key), ""))
    }

    /// Write the record of a handled message, with the time its decision took.
    pub fn finish(&self, mut outcome_record: Record, started: Instant) {
        outcome_record.latency_us = Some(started.elapsed().as_micros() as u64);
        if let Some(m) = &self.guards.metrics {
            m.record(&outcome_record);
        }
        if let Err(e) = self.audit.write(outcome_record) {
            tracing::error!("audit write failed: {e}");
        }
    }
}

/// Fill a record from a rejection.
fn deny(record: &mut Record, r: &Rejection) {
    record.decision = Decision::Deny;
    record.event = r.event.to_owned();
    record.rule = Some(r.rule.clone());
    record.reason = Some(r.reason.clone());
    record.code = Some(r.code);
    record.alert = r.alert;
}
