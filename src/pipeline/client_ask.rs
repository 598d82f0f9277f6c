//! Approval asked where the human already is, legacy era (SPEC §6): when the transport can send
//! the proxy's own requests (`ask_through_client`, `wrap`) and the client declared form
//! elicitation, a held call is asked through the client — an `elicitation/create` with an id of
//! the proxy's own (`mcp-warden/approval/<random>`), never seen by the server, whose answer
//! `answer_ask` consumes (never forwarded). The wait runs on the transport's approval thread,
//! as a queue wait does; only accept + `approve = true` runs the call, and decline, cancel, a
//! malformed or error answer, the timeout or the client going away end in -32014 saying which
//! (`hold::resolve_hold`).
//!
//! In `serve` the request goes out on the held call's own POST response stream
//! (`transport/http/ask_stream.rs`); that stream closing before the answer is the client going
//! away for this one call (`ask_stream_closed`), not for the whole session.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::hold::{lock, not_granted, Held};
use super::{Pipeline, Verdict};
use crate::approval::ask::{self, ClientAnswer};
use crate::approval::Resolution;
use crate::audit::{Decision, Direction, Record};
use crate::codec::{Envelope, Id, Kind};
use crate::errors::Rejection;
use crate::policy::Risk;
use crate::session::{Era, Session};

/// How many ended asks are remembered for late answers.
const CLOSED_ASKS: usize = 64;

/// The proxy's own approval requests of one pipeline.
#[derive(Default)]
pub(super) struct Asks {
    /// The transport sends the proxy's own requests to the client (`wrap`).
    enabled: AtomicBool,
    /// Asks in flight → the client's answer once it came.
    pending: Mutex<HashMap<String, Option<ClientAnswer>>>,
    answered: Condvar,
    /// The last few asks whose wait ended (timeout, cancel): a late answer is consumed
    /// quietly rather than taken for an unsolicited response. Bounded.
    closed: Mutex<VecDeque<String>>,
    /// Asks whose carrying stream closed before the answer (`serve`: the call's POST stream).
    /// Only asks in flight enter, and their wait takes them out: bounded by `pending`.
    gone: Mutex<HashSet<String>>,
    /// Stateless (`serve`, modern era): what a `requestState` is bound to instead of the
    /// session, which lives for one request only (`mrtr.rs`).
    pub(super) binding: std::sync::OnceLock<String>,
}

impl Pipeline {
    /// Hold a call by asking the client's human: the `Held` carries the request the transport
    /// sends; its id is registered so the answer is recognised.
    pub(super) fn ask_call(
        &self,
        id: Id,
        line: &[u8],
        (risk, rule, reason): (Risk, String, String),
        shape: Option<String>,
        record: &mut Record,
    ) -> Result<Verdict, Rejection> {
        let tool = record.tool.clone().unwrap_or_default();
        let arguments = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|m| m.get("params").and_then(|p| p.get("arguments")).cloned());
        let preview = arguments
            .as_ref()
            .map(crate::approval::safe_view)
            .unwrap_or_default();
        let params = ask::elicit_params(&ask::Question {
            server: &self.server,
            tool: &tool,
            risk: risk.as_str(),
            rule: &rule,
            reason: &reason,
            arguments: &preview,
            remember: shape.is_some(),
        });
        let ask_id = format!("{}/{}", ask::INPUT_KEY, crate::session::random_id());
        let line_out = serde_json::to_vec(&json!({
            "jsonrpc": "2.0",
            "id": ask_id,
            "method": "elicitation/create",
            "params": params,
        }))
        .map_err(|e| not_granted(&tool, &format!("cannot build the approval request: {e}")))?;
        lock(&self.holds.asks.pending).insert(ask_id.clone(), None);
        self.holds.waiting.fetch_add(1, Ordering::AcqRel);
        record.decision = Decision::Hold;
        record.event = "approval.requested".into();
        record.rule = Some(rule.clone());
        record.reason = Some(format!(
            "asking the user through the client (elicitation {ask_id}): {reason}"
        ));
        Ok(Verdict::Hold(Box::new(Held {
            ticket: ask_id,
            id,
            line: line.to_vec(),
            tool,
            rule,
            audit_id: record.audit_id.clone(),
            method: record.method.clone().unwrap_or_default(),
            args_sha256: record.args_sha256.clone(),
            ask: Some(line_out),
            shape,
            since: Instant::now(),
        })))
    }

    /// The transport can send the proxy's own requests to the client (`wrap` says so before
    /// the first message): approvals are then asked where the human is, when the client can.
    pub fn ask_through_client(&self) {
        self.holds.asks.enabled.store(true, Ordering::Release);
    }

    /// The transport is stateless (`serve`, modern era): each request has a pipeline of its
    /// own, so modern approval rounds are bound to `binding` — the verified key id of the
    /// request's signature, else the route (the MAC key is the per-process secret) — and their
    /// spent nonces are kept process-wide. A state minted for one client cannot serve another.
    pub fn ask_stateless(&self, binding: String) {
        let _ = self.holds.asks.binding.set(binding);
        self.ask_through_client();
    }

    /// Whether this session's approvals are asked through the client (legacy era, form
    /// elicitation declared, a transport that can send our request).
    pub(super) fn asks_client(&self, s: &Session) -> bool {
        self.holds.asks.enabled.load(Ordering::Acquire)
            && matches!(s.era, Era::Legacy(_))
            && s.client_caps.as_ref().is_some_and(|c| c.elicitation_form)
    }

    /// Whether modern-era approvals use an `input_required` round (the client declared form
    /// elicitation in this request's `_meta`).
    pub(super) fn asks_modern(&self, s: &Session) -> bool {
        self.holds.asks.enabled.load(Ordering::Acquire)
            && matches!(s.era, Era::Modern(_))
            && s.client_caps.as_ref().is_some_and(|c| c.elicitation_form)
    }

    /// The client's answer to one of the proxy's own elicitations: handed to the waiting call
    /// and consumed. `false` when `env` answers something else.
    pub(super) fn answer_ask(&self, env: &Envelope, record: &mut Record) -> bool {
        let Some(Id::Str(id)) = env.id.as_ref() else {
            return false;
        };
        if !id.starts_with(ask::INPUT_KEY) {
            return false;
        }
        let mut asks = lock(&self.holds.asks.pending);
        let Some(slot) = asks.get_mut(id.as_str()).filter(|a| a.is_none()) else {
            drop(asks);
            if !lock(&self.holds.asks.closed).contains(id) {
                return false;
            }
            record.direction = Direction::Proxy;
            record.method = Some("elicitation/create".into());
            record.decision = Decision::Deny;
            record.event = "approval.late_answer".into();
            record.reason = Some(
                "the client answered the proxy's approval request after the wait had ended (timeout or cancel); ignored, nothing runs"
                    .into(),
            );
            return true;
        };
        let parse = |raw: Option<&serde_json::value::RawValue>| {
            raw.and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
        };
        let answer = match env.kind {
            Kind::ErrorResponse => {
                ask::read_answer(None, Some(&parse(env.error).unwrap_or(Value::Null)))
            }
            _ => ask::read_answer(parse(env.result).as_ref(), None),
        };
        record.direction = Direction::Proxy;
        record.method = Some("elicitation/create".into());
        record.decision = Decision::Allow;
        record.event = "approval.client_answered".into();
        record.reason = Some(format!(
            "the client answered the proxy's approval request: {}",
            answer.outcome()
        ));
        *slot = Some(answer);
        drop(asks);
        self.holds.asks.answered.notify_all();
        true
    }

    /// Wait for the client's answer to our elicitation, the call's cancellation, the client
    /// going away, or the timeout. The answer slot is removed whatever happened.
    pub(super) fn wait_for_client(&self, held: &Held) -> Resolution {
        let deadline = held.since + self.approval_timeout();
        let outcome = loop {
            // Checked without the asks lock held: the session lock is always taken first.
            if self.holds.client_gone.load(Ordering::Acquire) {
                break Resolution::ClientGone;
            }
            let cancelled = self
                .session()
                .client_pending
                .get(&held.id)
                .is_none_or(|p| p.cancelled);
            if cancelled {
                break Resolution::Withdrawn;
            }
            if lock(&self.holds.asks.gone).remove(&held.ticket) {
                break Resolution::ClientGone;
            }
            let asks = lock(&self.holds.asks.pending);
            if let Some(Some(answer)) = asks.get(&held.ticket) {
                break Resolution::Client(answer.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                break Resolution::TimedOut;
            }
            // Woken by the answer; the short bound re-checks cancellation and disconnect.
            let step = (deadline - now).min(Duration::from_millis(100));
            drop(self.holds.asks.answered.wait_timeout(asks, step));
        };
        lock(&self.holds.asks.pending).remove(&held.ticket);
        let mut closed = lock(&self.holds.asks.closed);
        if closed.len() == CLOSED_ASKS {
            closed.pop_front();
        }
        closed.push_back(held.ticket.clone());
        outcome
    }

    /// The stream that carried ask `ticket` to the client closed before the answer (`serve`:
    /// the held call's POST response): its wait ends as the client gone. No-op once the wait
    /// has ended.
    pub fn ask_stream_closed(&self, ticket: &str) {
        let asks = lock(&self.holds.asks.pending);
        if asks.get(ticket).is_some_and(Option::is_none) {
            lock(&self.holds.asks.gone).insert(ticket.to_owned());
        }
        drop(asks);
        self.holds.asks.answered.notify_all();
    }

    /// The transport cannot send the ask (`serve`: the POST did not accept an event stream, or
    /// no stream slot is free): forget it and end the hold with `why`, -32014 like every
    /// approval that was not given.
    pub fn ask_unsendable(&self, held: Held, why: &str) -> super::Outcome {
        lock(&self.holds.asks.pending).remove(&held.ticket);
        self.resolve_hold(held, Resolution::Failed(why.to_owned()))
    }

    /// After a wait through the client that ended without the client's answer: the
    /// `notifications/cancelled` that closes the dialog the client may still show.
    pub fn ask_abandoned(&self, held: &Held, resolution: &Resolution) -> Option<Vec<u8>> {
        held.ask.as_ref()?;
        let why = match resolution {
            Resolution::TimedOut => "the approval timed out",
            Resolution::Withdrawn => "the call was cancelled",
            _ => return None,
        };
        serde_json::to_vec(&json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": held.ticket, "reason": why}
        }))
        .ok()
    }
}
