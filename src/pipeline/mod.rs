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
//! | `server_batch.rs` | a server's batch judged element by element        |
//! | `params.rs` | borrowed views of the few `params` members checks read |
//! | `guards.rs` | the optional checks built from config (verifier, trust, …) |
//! | `auth.rs`   | step: message-scheme signatures                       |
//! | `pins_step.rs` | step: capability baselines on calls and listings   |
//! | `policy_step.rs` | step: policy, rate limit, trust gate              |
//! | `content_step.rs` | step: redaction, quarantine, taint, elicitation  |
//! | `hold.rs`   | calls waiting for approval, and how a wait ends         |
//! | `client_ask.rs` | approval asked through the client's elicitation (legacy) |
//! | `mrtr.rs`   | modern-era approval: `input_required` round, authenticated state |
//! | `prefetch.rs` | the proxy's own listing when a call comes before any |
//! | `method_step.rs` | step: well-formed, non-confusable method names    |
//! | `server_requests.rs` | step: server requests need declared capabilities, rate, valid schema |
//! | `elicit_schema.rs` | the flat primitive `requestedSchema` the spec allows |
//! | `flood.rs`  | step: server notifications bounded per second, coalesced |
//! | `sampling_step.rs` | step: a server's sampling routed to the backend, denied, or left to the client |
//! | `sampling_retry.rs` | modern `input_required` sampling fulfilled by the backend, the call retried |
//! | `deliver.rs` | a verdict acted on: what moves on, what goes back, the record as a drop guard |
//! | `replies.rs` | which request a server message belongs to (`Routing`), from the one id table |
//! | `stand_in.rs` | the proxy's error in place of one answer that did not come or was refused (`connect`) |

mod auth;
mod client;
mod client_ask;
mod content_step;
pub mod deliver;
mod elicit_schema;
mod flood;
mod guards;
mod hold;
mod method_step;
mod mrtr;
mod params;
mod pins_step;
mod policy_step;
mod prefetch;
mod replies;
mod sampling_retry;
mod sampling_step;
mod server;
mod server_batch;
mod server_requests;
mod stand_in;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::audit::{AuditLog, Decision, Direction, Record};
use crate::codec::{Id, Limits};
use crate::errors::{Rejection, Source, INTERNAL_ERROR};
use crate::session::{self, ReplyTo, Session};

pub use content_step::{screen_result, Screened};
pub use flood::FloodWindow;
pub use guards::{trusted_keys, Guards};
pub use hold::Held;
pub use method_step::check_method;
pub use prefetch::PREFETCH_WAIT;
pub use sampling_step::Sampling;
pub use server::INLINE_MAX;

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
    /// A server's sampling request the backend answers: the transport calls
    /// `Pipeline::run_sampling` off its reader thread and acts on that outcome (an answer to
    /// the server). The record is written then, with the usage.
    Sample(Box<sampling_step::Sampling>),
    /// Do not pass it on and answer nobody (unsolicited responses, garbage from the server,
    /// rejected notifications). Audited like everything else.
    Drop,
}

/// One message's verdict, the audit record that explains it, and where it belongs.
pub struct Outcome {
    pub verdict: Verdict,
    pub record: Record,
    pub routing: Routing,
}

impl Outcome {
    pub fn new(verdict: Verdict, record: Record) -> Outcome {
        Outcome {
            verdict,
            record,
            routing: Routing::Session,
        }
    }

    /// The same outcome, tied to the request(s) `routing` names.
    pub fn routed(mut self, routing: Routing) -> Outcome {
        self.routing = routing;
        self
    }
}

/// Which request a message belongs to, from the session's one table of requests in flight:
/// what a transport that answers each request on a stream of its own (`serve`'s stdio upstream)
/// needs to deliver it, so that no transport reads a judged message again. `wrap` and the
/// HTTP upstreams (one exchange per request) ignore it.
#[derive(Debug, Default)]
pub enum Routing {
    /// Tied to no request: the session's own stream (server requests, notifications).
    #[default]
    Session,
    /// Client requests that went on and await their answers: the transport attaches the stream
    /// they are answered on (`Pipeline::reply_to`) before sending them.
    Asked(Vec<Id>),
    /// The answer to a client request, for the stream attached to it (`None`: none was, or the
    /// request was cancelled: it goes nowhere).
    Answers(Option<ReplyTo>),
    /// A notification about a request still in flight (its progress token): that request's
    /// stream, while it is open.
    About(ReplyTo),
    /// A server batch (2025-03-26): its passing elements' routings, in order.
    Batch(Vec<Routing>),
}

/// The per-session pipeline: configuration, state, audit.
pub struct Pipeline {
    pub server: String,
    limits: Limits,
    session: Mutex<Session>,
    audit: Arc<AuditLog>,
    guards: Arc<Guards>,
    prefetch: prefetch::Prefetch,
    /// Notifications the flood bound held back and now released, for the transport to send
    /// (`take_released`); the flag spares the hot path a lock.
    released: Mutex<Vec<(Routing, Vec<u8>)>>,
    has_released: std::sync::atomic::AtomicBool,
    holds: hold::Holds,
    /// Sampling requests the backend is working on, by the server's request id: a
    /// `notifications/cancelled` (or the end of the session) cancels them.
    sampling: Mutex<std::collections::HashMap<crate::codec::Id, crate::inference::Cancel>>,
    /// Audit ids of records whose durable write failed, by request id: the refusal that
    /// follows (`audit_failure_answer`) quotes the id of the record it could not write.
    unwritten: Mutex<std::collections::HashMap<String, String>>,
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
            prefetch: prefetch::Prefetch::default(),
            released: Mutex::new(Vec::new()),
            has_released: std::sync::atomic::AtomicBool::new(false),
            holds: hold::Holds::default(),
            sampling: Mutex::new(std::collections::HashMap::new()),
            unwritten: Mutex::new(std::collections::HashMap::new()),
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
        r.protocol_version = match &session.era {
            crate::session::Era::Legacy(v) | crate::session::Era::Modern(v) if !v.is_empty() => {
                Some(v.clone())
            }
            _ => None,
        };
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
        Outcome::new(verdict, record)
    }

    /// Lines the flood bound held back and has now released, in order: the transport sends
    /// them to the client before the message it is handling. Each with its routing as of its
    /// release (the request its progress is about may be answered by the message that released
    /// it). Cheap when there are none.
    pub fn take_released(&self) -> Vec<(Routing, Vec<u8>)> {
        use std::sync::atomic::Ordering;
        if !self.has_released.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.released.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A flood window ended: queue its held-back lines for the transport and write the ONE
    /// record that counts what it shed.
    fn release_held(
        &self,
        session: &Session,
        (lines, summary): (Vec<Vec<u8>>, Option<flood::WindowSummary>),
    ) {
        if !lines.is_empty() {
            let routed = lines
                .into_iter()
                .map(|line| (replies::routing_of_line(session, &line), line));
            self.released
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(routed);
            self.has_released
                .store(true, std::sync::atomic::Ordering::Release);
        }
        if let Some(sum) = summary {
            let mut r = self.record(session, Direction::ServerToClient, 0);
            r.event = "notifications.flood_bounded".into();
            r.decision = Decision::Deny;
            r.rule = Some("notifications.rate".into());
            r.reason = Some(format!(
                "server sent more than {} notifications in one second: {} dropped, {} coalesced (latest per progress token kept)",
                flood::NOTIFICATIONS_PER_SECOND, sum.dropped, sum.coalesced
            ));
            r.alert = true;
            self.finish(r, Instant::now());
        }
    }

    /// A server line over the limit was discarded; `id` is the JSON text of its top-level id as
    /// far as the transport could see it. If that id is a client request waiting for its
    /// answer, the request gets a -32603 in its place (forwarded to the client) and its id is
    /// freed; otherwise the line is dropped and audited as any oversize frame.
    pub fn oversize_answer(&self, seen: u64, id: Option<&str>) -> Outcome {
        let mut session = self.session();
        let key = id.and_then(|id| {
            session
                .client_pending
                .keys()
                .find(|k| k.to_json() == id)
                .cloned()
        });
        let Some((key, pending)) = key.and_then(|k| session.client_pending.remove_entry(&k)) else {
            drop(session);
            return self.oversize(Direction::ServerToClient, seen);
        };
        let mut record = self.record(&session, Direction::ServerToClient, seen as usize);
        let routing = replies::answers(&mut session, &key, &pending);
        record.method = Some(pending.method);
        record.tool = pending.tool;
        record.id = Some(key.to_string());
        let limit = self.limits.max_message_bytes;
        let rejection = Rejection::new(
            INTERNAL_ERROR,
            "upstream.oversize_answer",
            "max_message_bytes",
            format!("response exceeded proxy.max_message_bytes: the server's answer of {seen} bytes is over the {limit}-byte limit and was discarded"),
        )
        .from(Source::Upstream)
        .alert();
        let rejection = short(
            rejection,
            "Internal error: response exceeded proxy.max_message_bytes",
        );
        let answer = rejection.to_response(Some(&key), &record.audit_id);
        deny(&mut record, &rejection);
        Outcome::new(Verdict::Rewrite(answer), record).routed(routing)
    }

    /// The upstream is gone: every client request still waiting gets an error, so no request is
    /// left without exactly one answer.
    pub fn abandon_pending(&self, why: &str) -> Vec<Outcome> {
        self.cancel_all_sampling();
        let mut session = self.session();
        // The last flood window's count is written too (its held lines are moot now).
        let (_, summary) = session.flood.end_window();
        self.release_held(&session, (Vec::new(), summary));
        let pending: Vec<(Id, session::Pending)> = session.client_pending.drain().collect();
        session.progress.clear();
        let mut out = Vec::new();
        for (id, p) in pending {
            let routing = Routing::Answers(p.reply);
            let method = p.method;
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
            out.push(Outcome::new(Verdict::Answer(answer), record).routed(routing));
        }
        out
    }

    /// Write a record and make it durable before the message moves on.
    pub fn finish_durable(&self, mut record: Record, started: Instant) -> std::io::Result<()> {
        record.latency_us = Some(started.elapsed().as_micros() as u64);
        if let Some(m) = &self.guards.metrics {
            m.record(&record);
        }
        let key = record.id.clone().map(|id| (id, record.audit_id.clone()));
        let written = self.audit.write_durable(record);
        if let (Err(_), Some((id, audit_id))) = (&written, key) {
            let mut unwritten = self.unwritten.lock().unwrap_or_else(|p| p.into_inner());
            // Bounded: normally each entry is taken at once by the refusal that follows.
            if unwritten.len() >= 64 {
                unwritten.clear();
            }
            unwritten.insert(id, audit_id);
        }
        written
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
            "the audit record of this call could not be written (audit sink failing, or a high-risk call that must be on disk first), so it was not forwarded; see audit.on_failure",
        )
        .from(Source::Internal)
        .alert();
        let r = short(r, "Internal error: the audit record could not be written");
        let audit_id = self
            .unwritten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .unwrap_or_default();
        Some(r.to_response(Some(&key), &audit_id))
    }

    /// Write the record of a handled message, with the time its decision took.
    pub fn finish(&self, mut outcome_record: Record, started: Instant) {
        // Counted in its flood window's one record instead.
        if outcome_record.event == flood::SUPPRESSED {
            return;
        }
        outcome_record.latency_us = Some(started.elapsed().as_micros() as u64);
        if let Some(m) = &self.guards.metrics {
            m.record(&outcome_record);
        }
        if let Err(e) = self.audit.write(outcome_record) {
            tracing::error!("audit write failed: {e}");
        }
    }
}

/// A rejection whose error `message` carries the short reason (the full one is `data.reason`).
pub(crate) fn short(mut r: Rejection, message: impl Into<String>) -> Rejection {
    r.message = Some(message.into());
    r
}

/// Fill a record from a rejection.
fn deny(record: &mut Record, r: &Rejection) {
    record.decision = Decision::Deny;
    record.event = r.event.to_owned();
    record.rule = Some(r.rule.clone());
    record.reason = Some(r.reason.clone());
    record.code = Some(r.code);
    record.alert = r.alert;
    record.fault = Some(r.source.label());
}
