//! Calls that wait for a human. The pipeline files a ticket in the approval queue and returns
//! `Verdict::Hold`; the transport waits for the outcome off its reader thread and calls
//! `resolve_hold`, which yields the call's bytes (explicit approval) or a -32014 answer
//! (denied, timed out, forged, queue unavailable): every path but an explicit, signed approval
//! fails closed. A call the client cancelled (or a client that went away) is withdrawn: the
//! ticket disappears, the withdrawal is audited, nothing is executed and nobody is answered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{deny, Outcome, Pipeline, Verdict};
use crate::approval::Resolution;
use crate::audit::{Decision, Record};
use crate::codec::Id;
use crate::errors::{Rejection, APPROVAL_FAILED};
use crate::policy::Risk;

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
}

/// The holds of one pipeline: how many wait, and whether the client is gone.
#[derive(Default)]
pub(super) struct Holds {
    client_gone: AtomicBool,
    waiting: AtomicUsize,
}

/// What the client-side check decided for a call that may go on.
pub(super) enum Admit {
    Forward,
    Hold {
        risk: Risk,
        rule: String,
        reason: String,
    },
}

impl Pipeline {
    /// File a ticket for a call that needs approval. Without a queue (or if it cannot be written)
    /// the call is refused at once.
    pub(super) fn hold_call(
        &self,
        id: Id,
        line: &[u8],
        (risk, rule, reason): (Risk, String, String),
        record: &mut Record,
    ) -> Result<Verdict, Rejection> {
        let tool = record.tool.clone().unwrap_or_default();
        let queue = self
            .guards
            .approvals
            .as_ref()
            .ok_or_else(|| not_granted(&tool, "no approval channel is configured"))?;
        // What the approver sees: a safe view of the arguments, not only their digest.
        let preview = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|m| m.get("params").and_then(|p| p.get("arguments")).cloned())
            .map(|a| crate::approval::safe_view(&a))
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
        })))
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
        match &self.guards.approvals {
            Some(q) => q.wait(&held.ticket, held.args_sha256.as_deref(), &withdrawn),
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
            return Outcome {
                verdict: Verdict::Drop,
                record,
            };
        }
        if resolution == Resolution::Approved {
            record.decision = Decision::Allow;
            record.event = "approval.granted".into();
            record.reason = Some(format!("approved by an operator (ticket {})", held.ticket));
            record.durable = true;
            return Outcome {
                verdict: Verdict::Rewrite(held.line),
                record,
            };
        }
        self.session().client_pending.remove(&held.id);
        let why = match &resolution {
            Resolution::Denied => "an operator denied it".to_owned(),
            Resolution::TimedOut => "nobody approved it before the timeout".to_owned(),
            Resolution::Failed(e) => e.clone(),
            Resolution::Forged(e) => format!("a forged decision was found, refused: {e}"),
            Resolution::Approved | Resolution::Withdrawn => String::new(),
        };
        let mut rejection = not_granted(&held.tool, &format!("{why} (ticket {})", held.ticket));
        if matches!(resolution, Resolution::Forged(_)) {
            rejection.event = "approval.forged";
        }
        // The record says why the call was held in the first place (policy rule, padding,
        // tainted session), not just that approval failed.
        rejection.rule = held.rule.clone();
        let answer = rejection.to_response(Some(&held.id), &held.audit_id);
        deny(&mut record, &rejection);
        Outcome {
            verdict: Verdict::Answer(answer),
            record,
        }
    }
}

fn not_granted(tool: &str, why: &str) -> Rejection {
    Rejection::new(
        APPROVAL_FAILED,
        "approval.not_granted",
        "approval",
        format!("{tool} needs human approval and was not approved: {why}"),
    )
    .alert()
}
