//! Client → server. The checks run in this order, each for a reason:
//!
//! 1. Framing and strict parsing (codec): nothing else may look at bytes that two parsers could
//!    read differently (duplicate keys, trailing values, bad UTF-8).
//! 2. Envelope shape: a JSON-RPC message, or the peer gets -32600 with the id it sent.
//! 3. Batches: only where 2025-03-26 was negotiated, and then each element on its own.
//! 4. Id bookkeeping: a request id still in flight must not be reused (the answer to the first
//!    would be taken for the second); responses must answer a request the server really sent.
//! 5. Later checks (signatures before policy: an unauthenticated caller must not learn which
//!    tools exist; then pins, policy, rate limits, approval) plug in after these.

use std::time::Instant;

use serde_json::value::RawValue;

use super::params::{self, CallParams, CancelParams, VersionPeek};
use super::{deny, Outcome, Pipeline, Routing, Verdict};
use crate::audit::{args_digest, Decision, Direction, OnFailure, Record};
use crate::codec::{self, Decoded, Envelope, Id, Kind};
use crate::errors::{Rejection, INVALID_REQUEST};
use crate::pins;
use crate::policy::Risk;
use crate::sig::outcome::Outcome as SigOutcome;

use super::hold::{Admit, HoldFacts};
use super::mrtr::Round;
use super::policy_step::CallPlan;
use crate::session::{ClientCaps, Era, Pending, Session, MAX_PENDING};

impl Pipeline {
    /// Decide what happens to one line the client sent.
    pub fn from_client(&self, line: &[u8]) -> Outcome {
        self.from_client_with(line, None)
    }

    /// As `from_client`, for transports that verified the signature themselves (HTTP headers):
    /// `checked` is that outcome, and the message scheme is not read.
    pub fn from_client_with(&self, line: &[u8], checked: Option<&SigOutcome>) -> Outcome {
        let mut session = self.session();
        let mut record = self.record(&session, Direction::ClientToServer, line.len());
        let decoded = match codec::decode(line, &self.limits) {
            Ok(d) => d,
            Err(rejection) => {
                // Unreadable: answer with the id we could read (none: null), as JSON-RPC says.
                let answer = rejection.to_response(None, &record.audit_id);
                deny(&mut record, &rejection);
                return Outcome::new(Verdict::Answer(answer), record);
            }
        };
        // The requests that go on and await an answer (for transports that route answers).
        let mut asked = Vec::new();
        let verdict = match decoded {
            Decoded::Single(env) => {
                let verdict = match self.check_client(
                    &mut session,
                    &env,
                    line,
                    checked,
                    &mut record,
                ) {
                    Ok(Admit::Forward) => match self.declare_sampling(&env, line) {
                        Some(bytes) => {
                            record.decision = Decision::Rewrite;
                            record.event = "inference.sampling_declared".into();
                            record.reason = Some("sampling declared to the server: the inference backend answers it (servers.sampling = \"backend\")".into());
                            Verdict::Rewrite(codec::escape_line_separators(&bytes).unwrap_or(bytes))
                        }
                        None => allow(line, &mut record),
                    },
                    // The record was filled by the step that decided (approval round, answer).
                    Ok(Admit::Rewrite(bytes)) => Verdict::Rewrite(bytes),
                    Ok(Admit::Answer(bytes)) => Verdict::Answer(bytes),
                    Ok(Admit::Consumed) => Verdict::Drop,
                    Ok(Admit::Hold {
                        risk,
                        rule,
                        reason,
                        shape,
                    }) => {
                        let id = env.id.clone().unwrap_or(Id::Num("0".into()));
                        let facts = HoldFacts {
                            session: &session,
                            shape,
                        };
                        match self.hold_call(id, line, (risk, rule, reason), facts, &mut record) {
                            Ok(v) => v,
                            Err(rejection) => {
                                if let Some(id) = &env.id {
                                    session.client_pending.remove(id);
                                }
                                refuse(&env, rejection, &mut record)
                            }
                        }
                    }
                    Err(rejection) => refuse(&env, rejection, &mut record),
                };
                let goes_on = matches!(verdict, Verdict::Forward | Verdict::Rewrite(_));
                if goes_on && env.kind == Kind::Request {
                    asked.extend(env.id.clone());
                }
                verdict
            }
            Decoded::Batch(items) => {
                self.client_batch(&mut session, items, line, checked, &mut record, &mut asked)
            }
        };
        // While the audit sink fails, a message goes on only once its record is on disk: the
        // transports' durable path writes it first and refuses (-32603) when it cannot.
        if self.guards.audit_on_failure == OnFailure::Refuse && !self.audit.healthy() {
            record.durable = true;
        }
        let routing = match asked.is_empty() {
            true => Routing::Session,
            false => Routing::Asked(asked),
        };
        Outcome::new(verdict, record).routed(routing)
    }

    fn client_batch(
        &self,
        session: &mut Session,
        items: Vec<&RawValue>,
        line: &[u8],
        checked: Option<&SigOutcome>,
        record: &mut Record,
        asked: &mut Vec<Id>,
    ) -> Verdict {
        record.method = Some("batch".into());
        if !session.batches_allowed() || items.is_empty() {
            let r = Rejection::new(
                INVALID_REQUEST,
                "rpc.batch_refused",
                "batch",
                "JSON-RPC batches are only allowed when protocol version 2025-03-26 was negotiated; send one message per line",
            );
            let answer = r.to_response(None, &record.audit_id);
            deny(record, &r);
            return Verdict::Answer(answer);
        }
        // Each element is judged on its own; the passing ones go on as one smaller batch.
        let mut passed: Vec<&str> = Vec::new();
        let mut answers: Vec<String> = Vec::new();
        for item in &items {
            let mut sub = self.record(session, Direction::ClientToServer, item.get().len());
            let outcome = match Envelope::parse(item.get()) {
                Ok(env) => {
                    match self.check_client(session, &env, item.get().as_bytes(), checked, &mut sub)
                    {
                        Ok(Admit::Forward) => {
                            if env.kind == Kind::Request {
                                asked.extend(env.id.clone());
                            }
                            Ok(true)
                        }
                        // The client's answer to the proxy's own request: consumed.
                        Ok(Admit::Consumed) => Ok(false),
                        // Nobody can approve one element of a batch: fail closed.
                        Ok(Admit::Hold { .. } | Admit::Rewrite(_) | Admit::Answer(_)) => {
                            if let Some(id) = &env.id {
                                session.client_pending.remove(id);
                            }
                            Err((
                            Rejection::new(
                                crate::errors::APPROVAL_FAILED,
                                "approval.not_granted",
                                "approval",
                                "a call that needs approval cannot be sent inside a batch; send it on its own",
                            ),
                            env.id.clone(),
                            true,
                        ))
                        }
                        Err(r) => Err((r, env.id.clone(), env.kind == Kind::Request)),
                    }
                }
                Err(e) => {
                    let id = e.id.clone();
                    Err((Rejection::invalid_envelope(e.reason, id.clone()), id, true))
                }
            };
            match outcome {
                Ok(true) => {
                    sub.decision = Decision::Allow;
                    passed.push(item.get());
                }
                Ok(false) => {}
                Err((r, id, answerable)) => {
                    if answerable {
                        answers.push(
                            String::from_utf8_lossy(&r.to_response(id.as_ref(), &sub.audit_id))
                                .into_owned(),
                        );
                    }
                    deny(&mut sub, &r);
                }
            }
            sub.event = format!("batch.{}", sub.event);
            self.finish(sub, Instant::now());
        }
        record.decision = Decision::Allow;
        let answer = (!answers.is_empty()).then(|| batch_of(&answers));
        match (passed.len() == items.len(), answer) {
            (true, _) => allow(line, record),
            (false, Some(answer)) if passed.is_empty() => {
                record.decision = Decision::Deny;
                Verdict::Answer(answer)
            }
            (false, answer) if passed.is_empty() => {
                record.decision = Decision::Deny;
                answer.map_or(Verdict::Drop, Verdict::Answer)
            }
            (false, answer) => {
                record.decision = Decision::Rewrite;
                let forward = batch_of(&passed);
                match answer {
                    Some(answer) => Verdict::Split { forward, answer },
                    None => Verdict::Rewrite(forward),
                }
            }
        }
    }

    /// The checks for one client message (single or batch element).
    fn check_client(
        &self,
        s: &mut Session,
        env: &Envelope,
        line: &[u8],
        checked: Option<&SigOutcome>,
        record: &mut Record,
    ) -> Result<Admit, Rejection> {
        record.method = env.method.as_deref().map(str::to_owned);
        record.id = env.id.as_ref().map(Id::to_string);
        if matches!(env.kind, Kind::Request | Kind::Notification) {
            // Before anything keyed on the method: policy must judge what the server would
            // dispatch, and a look-alike name could be dispatched as the real one.
            super::method_step::check_method(env.method())?;
            self.check_signature(line, checked, record)?;
        }
        match env.kind {
            Kind::Request => self.client_request(s, env, record),
            Kind::Notification => {
                if env.method() == "notifications/cancelled" {
                    if let Some(c) = params::parse::<CancelParams>(env.params) {
                        if let Some(p) = s
                            .client_pending
                            .iter_mut()
                            .find(|(id, _)| id.to_json() == c.request_id.get())
                        {
                            p.1.cancelled = true;
                            // Its answer goes nowhere: the stream waiting for it may end.
                            p.1.reply = None;
                        }
                    }
                }
                Ok(Admit::Forward)
            }
            Kind::Response | Kind::ErrorResponse => {
                // The answer to the proxy's own approval request is the proxy's, not the server's.
                if self.answer_ask(env, record) {
                    return Ok(Admit::Consumed);
                }
                let id = env.id.as_ref();
                match id.and_then(|id| s.server_pending.remove(id)) {
                    Some(p) => {
                        record.method = Some(p.method);
                        Ok(Admit::Forward)
                    }
                    None => Err(Rejection::new(
                        INVALID_REQUEST,
                        "rpc.unsolicited_response",
                        "unsolicited_response",
                        "the client answered a request the server never sent (or already answered); dropped",
                    )
                    .alert()),
                }
            }
        }
    }

    fn client_request(
        &self,
        s: &mut Session,
        env: &Envelope,
        record: &mut Record,
    ) -> Result<Admit, Rejection> {
        let Some(id) = env.id.clone() else {
            return Err(Rejection::invalid_envelope("a request needs an id", None));
        };
        if s.client_pending.contains_key(&id) {
            return Err(Rejection::new(
                INVALID_REQUEST,
                "rpc.id_reuse",
                "id_reuse",
                format!("request id {id} is still in flight in this session; a request id must not be reused"),
            )
            .alert());
        }
        if s.client_pending.len() >= MAX_PENDING {
            return Err(Rejection::new(
                INVALID_REQUEST,
                "rpc.too_many_pending",
                "max_pending",
                format!("more than {MAX_PENDING} requests are waiting for answers; wait for some to finish"),
            ));
        }
        let peek: VersionPeek = params::parse(env.params).unwrap_or_default();
        record.traceparent = peek
            .meta
            .as_ref()
            .and_then(|m| crate::telemetry::traceparent::from_raw(m.traceparent?));
        // Its trace state only beside a traceparent (W3C: alone it means nothing).
        record.tracestate = peek
            .meta
            .as_ref()
            .filter(|_| record.traceparent.is_some())
            .and_then(|m| crate::telemetry::traceparent::tracestate_from_raw(m.tracestate?));
        if let Some(v) = peek
            .meta
            .as_ref()
            .and_then(|m| m.protocol_version.as_deref())
        {
            s.era = Era::Modern(v.to_owned());
            record.era = s.era.label();
        } else if env.method() == "server/discover" && s.era == Era::Unknown {
            s.era = Era::Modern(String::new());
            record.era = s.era.label();
        }
        let declared = match env.method() {
            "initialize" => peek.capabilities,
            _ => peek.meta.as_ref().and_then(|m| m.client_capabilities),
        };
        if let Some(caps) = declared.and_then(|c| serde_json::from_str(c.get()).ok()) {
            s.client_caps = Some(ClientCaps::from_json(&caps));
        }
        let mut tool = None;
        let mut admit = Admit::Forward;
        match env.method() {
            "initialize" => s.requested_version = peek.protocol_version.map(|v| v.into_owned()),
            "tools/call" => {
                let call: CallParams = params::parse(env.params).ok_or_else(|| {
                    Rejection::invalid_envelope(
                        "tools/call needs params.name (a string)",
                        Some(id.clone()),
                    )
                })?;
                record.args_sha256 = call.arguments.map(|a| args_digest(a.get().as_bytes()));
                record.arguments = self.guards.logged_arguments(call.arguments);
                record.tool = Some(call.name.clone().into_owned());
                // Pins before policy: a held or never-listed tool reads as unknown, whatever a
                // policy would say about it.
                self.check_pinned(s, pins::Kind::Tool, &call.name)?;
                match self.check_policy(s, &call.name, call.arguments, record)? {
                    // After a result that looked like an injection, nothing high-risk goes
                    // out without a human (private read → public write, RES-01).
                    CallPlan::Forward { risk } if risk >= Risk::High && s.tainted.is_some() => {
                        record.durable = true;
                        let reason = s.tainted.clone().unwrap_or_default();
                        admit = Admit::Hold {
                            risk,
                            rule: "flow.tainted_session".into(),
                            reason,
                            shape: None,
                        };
                    }
                    CallPlan::Forward { risk } => record.durable = risk >= Risk::High,
                    CallPlan::Approve {
                        risk,
                        rule,
                        reason,
                        remember,
                    } => {
                        record.durable = true;
                        let args: Option<serde_json::Value> = call
                            .arguments
                            .and_then(|a| serde_json::from_str(a.get()).ok());
                        let shape = crate::approval::ask::shape(&call.name, args.as_ref());
                        if s.remembered.contains(&shape) {
                            // A human approved this tool with these argument names "for the
                            // session" earlier; the record says so.
                            record.event = "approval.remembered".into();
                            record.rule = Some(rule);
                            record.reason = Some(format!(
                                "approved earlier in this session for {shape} (remember = \"session\"); {reason}"
                            ));
                        } else if self.asks_modern(s) {
                            let plan = Round {
                                risk,
                                rule,
                                reason,
                                shape: remember.then_some(shape),
                            };
                            admit = self.approval_round(
                                s,
                                env,
                                &call.name,
                                args.as_ref(),
                                plan,
                                record,
                            )?;
                        } else {
                            admit = Admit::Hold {
                                risk,
                                rule,
                                reason,
                                shape: remember.then_some(shape),
                            };
                        }
                    }
                }
                if let Admit::Answer(_) = admit {
                    // Answered by the proxy (input_required): nothing is in flight.
                    record.tool = Some(call.name.into_owned());
                    return Ok(admit);
                }
                tool = Some(call.name.into_owned());
            }
            "resources/read" | "resources/subscribe" => {
                if let Some(uri) = peek.uri {
                    // Not a string: the server will refuse it; nothing names a file.
                    if let Ok(uri) = serde_json::from_str::<std::borrow::Cow<str>>(uri.get()) {
                        self.check_resource_uri(&uri, record)?;
                    }
                }
            }
            "prompts/get" => {
                if let Some(name) = peek.name.as_deref() {
                    self.check_pinned(s, pins::Kind::Prompt, name)?;
                }
            }
            _ => {}
        }
        record.tool = tool.clone();
        let retry = self.keep_for_retry(s, env);
        s.client_pending.insert(
            id,
            Pending {
                method: env.method().to_owned(),
                tool,
                started: Instant::now(),
                cancelled: false,
                paged: peek.cursor.is_some(),
                retry,
                reply: None,
                progress: peek
                    .meta
                    .as_ref()
                    .and_then(|m| m.progress_token)
                    .map(|t| t.get().into()),
            },
        );
        Ok(admit)
    }
}

/// Messages as one JSON-RPC batch (the passing or the refused elements of a batch).
pub(super) fn batch_of<T: AsRef<[u8]>>(parts: &[T]) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(part.as_ref());
    }
    out.push(b']');
    out
}

/// The message passes: original bytes, unless it carries raw line separators.
pub(super) fn allow(line: &[u8], record: &mut Record) -> Verdict {
    match codec::escape_line_separators(line) {
        Some(fixed) => {
            record.decision = Decision::Rewrite;
            record.event = "frame.normalized".into();
            record.reason = Some("raw U+2028/U+2029/U+0085 escaped".into());
            Verdict::Rewrite(fixed)
        }
        None => {
            record.decision = Decision::Allow;
            Verdict::Forward
        }
    }
}

/// A refused client message: requests are answered, everything else is dropped.
fn refuse(env: &Envelope, rejection: Rejection, record: &mut Record) -> Verdict {
    deny(record, &rejection);
    match (env.kind, &env.id) {
        (Kind::Request, id) => {
            Verdict::Answer(rejection.to_response(id.as_ref(), &record.audit_id))
        }
        _ => Verdict::Drop,
    }
}
