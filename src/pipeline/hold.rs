//! Calls that wait for a human. The pipeline files a ticket in the approval queue and returns
//! `Verdict::Hold`; the transport waits for the outcome off its reader thread and calls
//! `resolve_hold`, which yields the call's bytes (explicit approval) or a -32014 answer
//! (denied, timed out, queue unavailable): every path but an explicit approval fails closed.

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
        let ticket = queue
            .submit(
                &self.server,
                &tool,
                risk.as_str(),
                &rule,
                record.args_sha256.clone(),
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

    /// Block until the ticket is decided or times out.
    pub fn wait_for(&self, held: &Held) -> Resolution {
        match &self.guards.approvals {
            Some(q) => q.wait(&held.ticket),
            None => Resolution::Failed("no approval channel".into()),
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
            Resolution::Approved => String::new(),
        };
        let mut rejection = not_granted(&held.tool, &format!("{why} (ticket {})", held.ticket));
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
