//! Step: modern-era (2026-07-28) sampling for a server routed to the backend. Such a server
//! asks for a completion by answering a client request with `resultType: "input_required"`
//! and sampling `inputRequests`. When all of them are sampling, the proxy fulfils them from
//! the backend and retries the client's request itself, with `inputResponses` and the server's
//! `requestState`: the client (which may not be able to sample) only sees the final answer.
//! A failure ends the client's request with the error. The request's params are kept for this
//! only where it can happen (bounded: MRTR methods, at most `RETRY_KEEP_BYTES`).

use std::time::Instant;

use serde_json::{json, Value};

use super::sampling_step::{cancelled, declare_in, failure, unix_now, Sampling, METHOD};
use super::{deny, Outcome, Pipeline, Verdict};
use crate::audit::{Decision, Record};
use crate::checks::secrets::redact_json;
use crate::codec::{Envelope, Id, Kind};
use crate::config::SamplingRoute;
use crate::inference::{Cancel, Failure};
use crate::session::{Era, Pending, Session};

/// Modern era: an `input_required` answer whose sampling input requests the backend
/// fulfils; then the client's request is retried with `inputResponses` (and the server's
/// `requestState`), and the client only sees the final answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Retry {
    method: String,
    /// The client request's params (JSON text).
    params: Box<str>,
    /// (key, the input request's params as JSON text).
    requests: Vec<(String, String)>,
    state: Option<Value>,
}

/// Requests a modern server may answer with `input_required` (MRTR).
const RETRIED_METHODS: &[&str] = &["tools/call", "prompts/get", "resources/read"];

/// Params kept for a retry at most; a larger request's `input_required` goes to the client.
const RETRY_KEEP_BYTES: usize = 256 * 1024;

impl Pipeline {
    /// Modern era: the params of a request the proxy may have to retry (see `Retry`).
    pub(super) fn keep_for_retry(&self, s: &Session, env: &Envelope) -> Option<Box<str>> {
        let wanted = self.guards.sampling == SamplingRoute::Backend
            && self.guards.inference.is_some()
            && self.guards.retry_input_requests
            && matches!(s.era, Era::Modern(_))
            && env.kind == Kind::Request
            && RETRIED_METHODS.contains(&env.method());
        // Bounded: at most MAX_PENDING requests of at most RETRY_KEEP_BYTES each.
        let params = env.params.filter(|p| p.get().len() <= RETRY_KEEP_BYTES)?;
        wanted.then(|| params.get().into())
    }

    /// A modern `input_required` answer to client request `id` whose input requests are all
    /// sampling: `Some(Verdict::Sample)` (the backend answers, the proxy retries the call), or
    /// `Some(error to the client)` when a limit refuses it. `None`: not ours, checks go on.
    pub(super) fn fulfil_input_requests(
        &self,
        s: &mut Session,
        id: &Id,
        p: &Pending,
        env: &Envelope,
        record: &mut Record,
    ) -> Option<Verdict> {
        let retry = p.retry.as_ref()?;
        let result: Value = serde_json::from_str(env.result?.get()).ok()?;
        if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
            return None;
        }
        let inputs = result.get("inputRequests")?.as_object()?;
        if inputs.is_empty()
            || inputs
                .values()
                .any(|r| r.get("method").and_then(Value::as_str) != Some(METHOD))
        {
            return None;
        }
        for _ in inputs {
            if let Err(r) = self
                .server_request_rate(METHOD)
                .and_then(|()| self.sampling_limits())
            {
                let answer = r.to_response(Some(id), &record.audit_id);
                deny(record, &r);
                return Some(Verdict::Rewrite(answer));
            }
        }
        let requests = inputs
            .iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    r.get("params").unwrap_or(&Value::Null).to_string(),
                )
            })
            .collect();
        // The retried call's answer goes to the client like the first one would have.
        s.client_pending.insert(id.clone(), p.clone());
        let cancel = Cancel::default();
        self.sampling_map().insert(id.clone(), cancel.clone());
        record.event = "inference.requested".into();
        Some(Verdict::Sample(Box::new(Sampling {
            id: id.clone(),
            params: String::new(),
            cancel,
            started: Instant::now(),
            modern: Some(Retry {
                method: p.method.clone(),
                params: retry.clone(),
                requests,
                state: result.get("requestState").cloned(),
            }),
        })))
    }

    /// Fulfil a modern `input_required` from the backend and build the retried request (to the
    /// server); a failure is answered to the client, whose request it ends.
    pub(super) fn run_retry(&self, job: Sampling, retry: Retry, mut record: Record) -> Outcome {
        let backend = self
            .guards
            .inference
            .as_ref()
            .map(|b| b.config().authority.clone())
            .unwrap_or_default();
        let mut responses = serde_json::Map::new();
        let (mut prompt, mut completion) = (0, 0);
        let (mut model, mut redacted) = (String::new(), Vec::new());
        let started = Instant::now();
        for (key, params) in &retry.requests {
            let params: Value = serde_json::from_str(params).unwrap_or(Value::Null);
            let outcome = match &self.guards.inference {
                Some(b) => b.sample(&params, &job.cancel),
                None => Err(Failure::Backend(
                    "no inference backend is configured".into(),
                )),
            };
            match outcome {
                Ok(mut sampled) => {
                    redacted.extend(redact_json(&mut sampled.result));
                    prompt += sampled.usage.prompt_tokens.unwrap_or(0);
                    completion += sampled.usage.completion_tokens.unwrap_or(0);
                    model = sampled.usage.model;
                    responses.insert(key.clone(), sampled.result);
                }
                Err(f) => {
                    self.sampling_map().remove(&job.id);
                    let routing = {
                        let mut session = self.session();
                        match session.client_pending.remove(&job.id) {
                            Some(p) => super::replies::answers(&mut session, &job.id, &p),
                            None => super::Routing::Answers(None),
                        }
                    };
                    if f == Failure::Cancelled {
                        return cancelled(
                            record,
                            "the session ended; the backend request was closed",
                        );
                    }
                    let r = failure(&f, &backend);
                    let answer = r.to_response(Some(&job.id), &record.audit_id);
                    deny(&mut record, &r);
                    record.decision = Decision::Error;
                    return Outcome::new(Verdict::Rewrite(answer), record).routed(routing);
                }
            }
        }
        self.sampling_map().remove(&job.id);
        if let Some(budget) = &self.guards.token_budget {
            budget.spend(unix_now(), prompt + completion);
        }
        let mut params: Value = serde_json::from_str(&retry.params).unwrap_or_else(|_| json!({}));
        if let Some(p) = params.as_object_mut() {
            p.insert("inputResponses".into(), Value::Object(responses));
            match retry.state {
                Some(st) => p.insert("requestState".into(), st),
                None => p.remove("requestState"),
            };
        }
        let _ = declare_in(&mut params, false);
        record.decision = if redacted.is_empty() {
            Decision::Allow
        } else {
            Decision::Redact
        };
        record.event = "inference.completed".into();
        record.reason = Some(if redacted.is_empty() {
            "input_required fulfilled by the inference backend; the call was retried with inputResponses".into()
        } else {
            format!(
                "input_required fulfilled by the inference backend; redacted: {}",
                redacted.join(", ")
            )
        });
        record.detail = Some(json!({"inference": {
            "backend": backend,
            "model": model,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
            "input_requests": retry.requests.len(),
        }}));
        let bytes = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":{},"params":{}}}"#,
            job.id.to_json(),
            Value::from(retry.method),
            params
        )
        .into_bytes();
        Outcome::new(Verdict::Answer(bytes), record)
    }
}
