//! Calls that wait for a human. The pipeline files a ticket in the approval queue and returns
//! `Verdict::Hold`; the transport waits for the outcome off its reader thread and calls
//! `resolve_hold`, which yields the call's bytes (explicit approval) or a -32014 answer
//! (denied, timed out, forged, queue unavailable): every path but an explicit, signed approval
//! fails closed. A call the client cancelled (or a client that went away) is withdrawn: the
//! ticket disappears, the withdrawal is audited, nothing is executed and nobody is answered.
//!
//! Where the client can ask its human itself, the hold asks there instead (`client_ask.rs`);
//! `resolve_hold` ends both kinds of wait the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{deny, Outcome, Pipeline, Verdict};
use crate::approval::ask::ClientAnswer;
use crate::approval::Resolution;
use crate::audit::{Decision, Record};
use crate::codec::Id;
use crate::errors::{Rejection, APPROVAL_FAILED};
use crate::policy::Risk;
use crate::session::Session;

/// How long the human has when no queue (and so no configured timeout) exists.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A call held for approval.
#[derive(Debug, PartialEq, Eq)]
pub struct Held {
    pub ticket: String,
    pub id: Id,
    /// The exact bytes to forward if approved.
    pub line: Vec<u8>,
    pub tool: String,
    pub rule: String,
    /// The audit record of the call, completed when the wait ends.
    pub audit_id: String,
    pub method: String,
    pub args_sha256: Option<String>,
    /// Asked through the client: the proxy's own `elicitation/create` line, which the
    /// transport sends to the client; `ticket` is then its id. `None`: the approval queue.
    pub ask: Option<Vec<u8>>,
    /// "Remember for this session" is allowed: the call's shape (`ask::shape`).
    pub shape: Option<String>,
    pub since: Instant,
}

/// The holds of one pipeline: how many wait, and whether the client is gone.
#[derive(Default)]
pub(super) struct Holds {
    pub(super) client_gone: AtomicBool,
    pub(super) waiting: AtomicUsize,
    /// Asking through the client (`client_ask.rs`).
    pub(super) asks: super::client_ask::Asks,
    /// Who decided a queue ticket (kid, signer), from the wait to the record.
    deciders: Mutex<HashMap<String, (String, String)>>,
}

/// The extra facts of a held call (beyond the policy's `risk, rule, reason`).
pub(super) struct HoldFacts<'a> {
    pub session: &'a Session,
    /// Where "remember for this session" is allowed: the call's shape.
    pub shape: Option<String>,
}

/// What the client-side check decided for a call that may go on.
pub(super) enum Admit {
    Forward,
    Hold {
        risk: Risk,
        rule: String,
        reason: String,
        shape: Option<String>,
    },
    /// Forward these bytes instead (a modern retry with the proxy's MRTR fields removed).
    Rewrite(Vec<u8>),
    /// Answer the client with these bytes and forward nothing (a modern `input_required`).
    Answer(Vec<u8>),
    /// The client's answer to the proxy's own request: consumed here, never forwarded.
    Consumed,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pipeline {
    /// File a ticket for a call that needs approval. Without a queue (or if it cannot be written)
    /// the call is refused at once.
    pub(super) fn hold_call(
        &self,
        id: Id,
        line: &[u8],
        (risk, rule, reason): (Risk, String, String),
        facts: HoldFacts<'_>,
        record: &mut Record,
    ) -> Result<Verdict, Rejection> {
        // The client can ask its human itself: no ticket (`client_ask.rs`).
        if self.asks_client(facts.session) {
            return self.ask_call(id, line, (risk, rule, reason), facts.shape, record);
        }
        let tool = record.tool.clone().unwrap_or_default();
        let arguments = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|m| m.get("params").and_then(|p| p.get("arguments")).cloned());
        let queue = self
            .guards
            .approvals
            .as_ref()
            .ok_or_else(|| not_granted(&tool, "no approval channel is configured"))?;
        // What the approver sees: a safe view of the arguments, not only their digest.
        let preview = arguments
            .as_ref()
            .map(crate::approval::safe_view)
            .unwrap_or_default();
        let ticket = queue
            .submit(
                &self.server,
                &tool,
                risk.as_str(),
                &rule,
                record.args_sha256.clone(),
                preview,
            )
            .map_err(|e| {
                not_granted(&tool, &format!("the approval queue cannot be written: {e}"))
            })?;
        eprintln!(
            "mcp-warden: {}: {tool} needs approval ({reason}); run `mcp-warden approve {}` or `mcp-warden deny {}` within {} s",
            self.server,
            ticket.id,
            ticket.id,
            queue.timeout().as_secs()
        );
        self.holds.waiting.fetch_add(1, Ordering::AcqRel);
        record.decision = Decision::Hold;
        record.event = "approval.requested".into();
        record.rule = Some(rule.clone());
        record.reason = Some(format!("waiting for approval {} ({reason})", ticket.id));
        Ok(Verdict::Hold(Box::new(Held {
            ticket: ticket.id,
            id,
            line: line.to_vec(),
            tool,
            rule,
            audit_id: record.audit_id.clone(),
            method: record.method.clone().unwrap_or_default(),
            args_sha256: record.args_sha256.clone(),
            ask: None,
            shape: None,
            since: Instant::now(),
        })))
    }

    /// How long a human has to decide (`policy.approval_timeout_secs`).
    pub(super) fn approval_timeout(&self) -> Duration {
        self.guards
            .approvals
            .as_ref()
            .map_or(DEFAULT_TIMEOUT, |q| q.timeout())
    }

    /// Block until the ticket is decided, withdrawn or times out.
    pub fn wait_for(&self, held: &Held) -> Resolution {
        let withdrawn = || {
            self.holds.client_gone.load(Ordering::Acquire)
                || self
                    .session()
                    .client_pending
                    .get(&held.id)
                    .is_none_or(|p| p.cancelled)
        };
        if held.ask.is_some() {
            return self.wait_for_client(held);
        }
        match &self.guards.approvals {
            Some(q) => {
                let (r, decider) =
                    q.wait_decided(&held.ticket, held.args_sha256.as_deref(), &withdrawn);
                if let Some(d) = decider {
                    lock(&self.holds.deciders).insert(held.ticket.clone(), d);
                }
                r
            }
            None => Resolution::Failed("no approval channel".into()),
        }
    }

    /// The client is gone (EOF, disconnect): every waiting call is withdrawn. Returns once the
    /// waits have ended (bounded), so their records are written before the proxy shuts down.
    pub fn client_closed(&self) {
        self.holds.client_gone.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.holds.waiting.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The end of a wait: forward the call (its record made durable first by the transport), or
    /// answer -32014 and forget the request id.
    pub fn resolve_hold(&self, held: Held, resolution: Resolution) -> Outcome {
        let session = self.session();
        let mut record = self.record(
            &session,
            crate::audit::Direction::ClientToServer,
            held.line.len(),
        );
        drop(session);
        record.method = Some(held.method.clone());
        record.id = Some(held.id.to_string());
        record.tool = Some(held.tool.clone());
        record.rule = Some(held.rule.clone());
        record.args_sha256 = held.args_sha256.clone();
        self.holds.waiting.fetch_sub(1, Ordering::AcqRel);
        if resolution == Resolution::Withdrawn {
            // Nobody waits for an answer (MCP: a cancelled request is not answered).
            self.session().client_pending.remove(&held.id);
            record.decision = Decision::Deny;
            record.event = "approval.withdrawn".into();
            record.reason = Some(format!(
                "the client cancelled the call or went away; ticket {} withdrawn, nothing executed",
                held.ticket
            ));
            return Outcome::new(Verdict::Drop, record);
        }
        let waited_ms = held.since.elapsed().as_millis() as u64;
        let decider = lock(&self.holds.deciders).remove(&held.ticket);
        // Who decided: the client's elicitation, or the key that signed the queue decision
        // (the admin API and `approve` sign with the identity key, operators with their own).
        let decided_by = match (&resolution, &decider) {
            (Resolution::Client(_), _) => "client elicitation".to_owned(),
            (_, Some((kid, signer))) => {
                record.kid = Some(kid.clone());
                format!("{signer} (kid {kid})")
            }
            (Resolution::TimedOut | Resolution::ClientGone, _) => "nobody".to_owned(),
            _ => "proxy".to_owned(),
        };
        let outcome_word = match &resolution {
            Resolution::Approved => "approved",
            Resolution::Denied => "denied",
            Resolution::TimedOut => "timed_out",
            Resolution::Withdrawn => "withdrawn",
            Resolution::Forged(_) => "forged",
            Resolution::Failed(_) => "failed",
            Resolution::ClientGone => "client_disconnected",
            Resolution::Client(a) => a.outcome(),
        };
        let mut detail = json!({
            "approval": {
                "channel": if held.ask.is_some() { "client_elicitation" } else { "queue" },
                "decided_by": decided_by,
                "outcome": outcome_word,
                "wait_ms": waited_ms,
            }
        });
        if let Resolution::Approved | Resolution::Client(ClientAnswer::Approved { .. }) =
            &resolution
        {
            let mut remembered = None;
            if let (Resolution::Client(ClientAnswer::Approved { remember: true }), Some(shape)) =
                (&resolution, &held.shape)
            {
                self.session().remembered.insert(shape.clone());
                remembered = Some(shape.clone());
            }
            detail["approval"]["remembered"] = json!(remembered);
            record.decision = Decision::Allow;
            record.event = "approval.granted".into();
            record.reason = Some(match &remembered {
                Some(shape) => format!(
                    "approved by {decided_by} after {waited_ms} ms ({}); remembered for this session: {shape}",
                    held.ticket
                ),
                None => format!("approved by {decided_by} after {waited_ms} ms ({})", held.ticket),
            });
            record.detail = Some(detail);
            record.durable = true;
            return Outcome::new(Verdict::Rewrite(held.line), record)
                .routed(super::Routing::Asked(vec![held.id]));
        }
        self.session().client_pending.remove(&held.id);
        let timeout = self.approval_timeout().as_secs();
        let why = match &resolution {
            Resolution::Denied => format!("{decided_by} denied it"),
            Resolution::TimedOut if held.ask.is_some() => {
                format!("the user did not answer the client's approval request within {timeout} s")
            }
            Resolution::TimedOut => "nobody approved it before the timeout".to_owned(),
            Resolution::Failed(e) => e.clone(),
            Resolution::Forged(e) => format!("a forged decision was found, refused: {e}"),
            Resolution::ClientGone => "the client disconnected before answering".to_owned(),
            Resolution::Client(a) => a.refusal(),
            Resolution::Approved | Resolution::Withdrawn => String::new(),
        };
        record.detail = Some(detail);
        let mut rejection = not_granted(&held.tool, &format!("{why} (ticket {})", held.ticket));
        if matches!(resolution, Resolution::Forged(_)) {
            rejection.event = "approval.forged";
        }
        // The record says why the call was held in the first place (policy rule, padding,
        // tainted session), not just that approval failed.
        rejection.rule = held.rule.clone();
        let answer = rejection.to_response(Some(&held.id), &held.audit_id);
        let detail = record.detail.take();
        deny(&mut record, &rejection);
        record.detail = detail;
        Outcome::new(Verdict::Answer(answer), record)
    }
}

pub(super) fn not_granted(tool: &str, why: &str) -> Rejection {
    Rejection::new(
        APPROVAL_FAILED,
        "approval.not_granted",
        "approval",
        format!("{tool} needs human approval and was not approved: {why}"),
    )
    .alert()
}
