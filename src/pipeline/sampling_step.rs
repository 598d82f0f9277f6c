//! Step: a server's `sampling/createMessage`, per `[[servers]] sampling` (SPEC §11):
//!
//! - `client`: the usual server-request checks, then to the client (`server_requests.rs`);
//! - `deny`: answered to the server with -32013, the client never sees it;
//! - `backend`: the per-server rate, then `Verdict::Sample`: the transport runs
//!   `run_sampling` on a thread of its own (a completion takes seconds; the reader must keep
//!   reading, e.g. the server's `notifications/cancelled`) and answers the server with what it
//!   returns. The result passes the same secret redaction as any result. Failures (backend
//!   down, slow, garbage, unknown model) are errors to the server — never a silent fall-back
//!   to the client, which may not even have declared sampling.
//!
//! The request's one audit record is written when it is answered, with the backend's usage.
//! Also here: the `initialize` (and modern `_meta`) rewrite that declares `sampling` to such a
//! server. The modern era's `input_required` retry is `sampling_retry.rs`.

use std::time::Instant;

use serde_json::{json, Value};

use super::sampling_retry::Retry;
use super::{deny, short, Outcome, Pipeline, Verdict};
use crate::audit::{Decision, Record};
use crate::checks::secrets::redact_json;
use crate::codec::{Envelope, Id};
use crate::config::SamplingRoute;
use crate::errors::{
    Rejection, Source, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, POLICY_DENIED, RATE_LIMITED,
};
use crate::inference::{Cancel, Failure};
use crate::policy::RateDecision;

/// A sampling request on its way to the backend.
#[derive(Debug, PartialEq, Eq)]
pub struct Sampling {
    /// Legacy: the server's request id; modern: the client's request the proxy retries.
    pub id: Id,
    /// The request's `params` (JSON text).
    pub(super) params: String,
    pub(super) cancel: Cancel,
    /// When the server's request arrived: the record's latency covers the backend's time.
    pub started: Instant,
    pub(super) modern: Option<Retry>,
}

pub(super) const METHOD: &str = "sampling/createMessage";

impl Sampling {
    /// A modern `input_required` the proxy fulfils and then retries: the outcome of
    /// `run_sampling` is the retried request (to the server), whose answer is the client's.
    pub fn retries(&self) -> bool {
        self.modern.is_some()
    }
}

impl Pipeline {
    /// `Some(verdict)` when this server's sampling is not the client's business.
    pub(super) fn route_sampling(&self, env: &Envelope, record: &mut Record) -> Option<Verdict> {
        if env.method() != METHOD || self.guards.sampling == SamplingRoute::Client {
            return None;
        }
        let id = env.id.clone()?;
        let refuse = |record: &mut Record, r: Rejection| {
            let answer = r.to_response(Some(&id), &record.audit_id);
            deny(record, &r);
            Some(Verdict::Answer(answer))
        };
        if self.guards.sampling == SamplingRoute::Deny {
            let r = Rejection::new(
                POLICY_DENIED,
                "sampling.denied",
                "sampling.route",
                format!(
                    "sampling is denied for server {} (servers.sampling = \"deny\")",
                    self.server
                ),
            )
            .from(Source::Upstream);
            return refuse(
                record,
                short(
                    r,
                    "Denied by policy: sampling is not allowed for this server",
                ),
            );
        }
        if let Err(r) = self
            .server_request_rate(METHOD)
            .and_then(|()| self.sampling_limits())
        {
            return refuse(record, r);
        }
        let Some(backend) = &self.guards.inference else {
            let r = Rejection::new(
                INTERNAL_ERROR,
                "inference.unavailable",
                "inference.backend",
                "servers.sampling = \"backend\" but no inference.backend is configured",
            )
            .from(Source::Internal)
            .alert();
            return refuse(
                record,
                short(r, "Internal error: no inference backend is configured"),
            );
        };
        let mut in_flight = self.sampling_map();
        if in_flight.contains_key(&id) || in_flight.len() >= backend.config().max_concurrent * 4 {
            drop(in_flight);
            let r = Rejection::new(
                INVALID_REQUEST,
                "rpc.id_reuse",
                "id_reuse",
                format!("sampling request id {id} is still in flight (or too many are waiting for the backend)"),
            )
            .from(Source::Upstream)
            .alert();
            return refuse(record, r);
        }
        let cancel = Cancel::default();
        in_flight.insert(id.clone(), cancel.clone());
        record.event = "inference.requested".into();
        Some(Verdict::Sample(Box::new(Sampling {
            id,
            params: env
                .params
                .map_or_else(|| "null".to_owned(), |p| p.get().to_owned()),
            cancel,
            started: Instant::now(),
            modern: None,
        })))
    }

    /// `[[servers]] sampling_rate` and `sampling_tokens_per_day` (-32016 with `retry_after_ms`).
    pub(super) fn sampling_limits(&self) -> Result<(), Rejection> {
        let limited = |rule: &str, reason: String, retry_after_ms: u64| {
            short(
                Rejection::new(RATE_LIMITED, "ratelimit.sampling", rule, reason)
                    .with_extra("retry_after_ms", Value::from(retry_after_ms))
                    .from(Source::Upstream)
                    .alert(),
                format!("Rate limited: sampling budget spent; retry in {retry_after_ms} ms"),
            )
        };
        if let Some(rate) = self.guards.sampling_rate {
            if let RateDecision::Limited { retry_after_ms } =
                self.guards
                    .limiter
                    .check("sampling", &self.server, METHOD, rate)
            {
                return Err(limited(
                    "servers.sampling_rate",
                    format!("server {} is over its sampling_rate ({} per {} s); retry in {retry_after_ms} ms", self.server, rate.count, rate.per.as_secs()),
                    retry_after_ms,
                ));
            }
        }
        if let Some(budget) = &self.guards.token_budget {
            if let Err(retry_after_ms) = budget.check(unix_now()) {
                return Err(limited(
                    "servers.sampling_tokens_per_day",
                    format!("server {} spent its {} sampling tokens for today (UTC); retry in {retry_after_ms} ms", self.server, budget.per_day()),
                    retry_after_ms,
                ));
            }
        }
        Ok(())
    }

    /// Ask the backend (blocking: call it off the reader threads) and build the answer to the
    /// server and the request's one audit record.
    pub fn run_sampling(&self, mut job: Sampling, record: Record) -> Outcome {
        match job.modern.take() {
            Some(retry) => self.run_retry(job, retry, record),
            None => self.run_legacy(job, record),
        }
    }

    fn run_legacy(&self, job: Sampling, mut record: Record) -> Outcome {
        let params: Value = serde_json::from_str(&job.params).unwrap_or(Value::Null);
        let outcome = match &self.guards.inference {
            Some(b) => b.sample(&params, &job.cancel),
            None => Err(Failure::Backend(
                "no inference backend is configured".into(),
            )),
        };
        self.sampling_map().remove(&job.id);
        let backend = self
            .guards
            .inference
            .as_ref()
            .map(|b| b.config().authority.clone())
            .unwrap_or_default();
        let mut sampled = match outcome {
            Ok(s) => s,
            Err(Failure::Cancelled) => {
                // The server withdrew the request: it expects no answer.
                return cancelled(
                    record,
                    "cancelled by the server; the backend request was closed",
                );
            }
            Err(f) => {
                let r = failure(&f, &backend);
                let answer = r.to_response(Some(&job.id), &record.audit_id);
                deny(&mut record, &r);
                record.decision = Decision::Error;
                return Outcome::new(Verdict::Answer(answer), record);
            }
        };
        if let Some(budget) = &self.guards.token_budget {
            let u = &sampled.usage;
            budget.spend(
                unix_now(),
                u.prompt_tokens.unwrap_or(0) + u.completion_tokens.unwrap_or(0),
            );
        }
        record.decision = Decision::Allow;
        record.event = "inference.completed".into();
        let kinds = redact_json(&mut sampled.result);
        if !kinds.is_empty() {
            record.decision = Decision::Redact;
            record.rule = Some("dlp.secret".into());
            record.reason = Some(format!(
                "redacted from the backend's result: {}",
                kinds.join(", ")
            ));
            record.alert = true;
        }
        let mut notes = Vec::new();
        if let Some(n) = sampled.capped_from {
            notes.push(format!(
                "maxTokens {n} capped to {}",
                self.guards
                    .inference
                    .as_ref()
                    .map_or(0, |b| b.config().max_tokens_cap)
            ));
        }
        if let Some(c) = &sampled.context_ignored {
            notes.push(format!("includeContext {c:?} treated as \"none\""));
        }
        if record.reason.is_none() && !notes.is_empty() {
            record.reason = Some(notes.join("; "));
        }
        record.detail = Some(json!({"inference": {
            "backend": backend,
            "model": sampled.usage.model,
            "prompt_tokens": sampled.usage.prompt_tokens,
            "completion_tokens": sampled.usage.completion_tokens,
            "latency_ms": sampled.latency.as_secs_f64() * 1000.0,
            "stop_reason": sampled.result.get("stopReason"),
        }}));
        let bytes = format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#,
            job.id.to_json(),
            sampled.result
        )
        .into_bytes();
        record.bytes = bytes.len() as u64;
        Outcome::new(Verdict::Answer(bytes), record)
    }

    /// A server's `notifications/cancelled` for a request the backend is working on: cancel
    /// it there. `true`: it was ours (not the client's business).
    pub(super) fn cancel_sampling(&self, params: Option<&serde_json::value::RawValue>) -> bool {
        if self.sampling_map().is_empty() {
            return false;
        }
        let params: Option<Value> = params.and_then(|p| serde_json::from_str(p.get()).ok());
        let id = match params.as_ref().and_then(|p| p.get("requestId")) {
            Some(Value::Number(n)) => Id::Num(n.to_string()),
            Some(Value::String(s)) => Id::Str(s.clone()),
            _ => return false,
        };
        match self.sampling_map().get(&id) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// The session ends: nothing in flight at the backend outlives it.
    pub(super) fn cancel_all_sampling(&self) {
        for cancel in self.sampling_map().values() {
            cancel.cancel();
        }
    }

    /// `initialize` to a server whose sampling the proxy answers: declare `sampling` (with
    /// tools, which the backend mapping supports) whatever the client declared, so the server
    /// offers its sampling features. `None`: nothing to change.
    pub(super) fn declare_sampling(&self, env: &Envelope, line: &[u8]) -> Option<Vec<u8>> {
        if self.guards.sampling != SamplingRoute::Backend || self.guards.inference.is_none() {
            return None;
        }
        if env.method() != "initialize"
            && !(self.guards.retry_input_requests && contains(line, CLIENT_CAPS.as_bytes()))
        {
            return None;
        }
        let mut message: Value = serde_json::from_slice(line).ok()?;
        let changed = declare_in(message.get_mut("params")?, env.method() == "initialize")?;
        changed.then(|| serde_json::to_vec(&message).ok()).flatten()
    }

    pub(super) fn sampling_map(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Id, Cancel>> {
        self.sampling.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The modern era's per-request client capabilities.
const CLIENT_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";

/// Declare `sampling` (with tools) in `params`: `capabilities` of `initialize`, else the
/// modern `_meta` client capabilities (only where the client sent some). `Some(changed)`.
pub(super) fn declare_in(params: &mut Value, initialize: bool) -> Option<bool> {
    let caps = if initialize {
        params
            .as_object_mut()?
            .entry("capabilities")
            .or_insert_with(|| json!({}))
    } else {
        params.get_mut("_meta")?.get_mut(CLIENT_CAPS)?
    };
    let caps = caps.as_object_mut()?;
    let want = json!({"tools": {}});
    if caps.get("sampling") == Some(&want) {
        return Some(false);
    }
    caps.insert("sampling".into(), want);
    Some(true)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The error the server gets for a failed routed request.
/// A sampling request whose backend call was cancelled: nobody is answered, the record says why.
pub(super) fn cancelled(mut record: Record, why: &str) -> Outcome {
    record.event = "inference.cancelled".into();
    record.decision = Decision::Deny;
    record.reason = Some(why.into());
    Outcome::new(Verdict::Drop, record)
}

pub(super) fn failure(f: &Failure, backend: &str) -> Rejection {
    let (code, event, reason, message) = match f {
        Failure::BadRequest(why) => (
            INVALID_PARAMS,
            "inference.bad_request",
            format!("the sampling request is malformed: {why}"),
            format!("Invalid params: {why}"),
        ),
        Failure::Timeout(t) => (
            INTERNAL_ERROR,
            "inference.timeout",
            format!("the inference backend at {backend} did not answer within {} s (inference.timeout_secs)", t.as_secs()),
            "Internal error: the inference backend timed out".to_owned(),
        ),
        Failure::Backend(why) => (
            INTERNAL_ERROR,
            "inference.backend_failed",
            format!("the inference backend at {backend} failed: {why}"),
            "Internal error: the inference backend failed".to_owned(),
        ),
        Failure::Cancelled => (
            INTERNAL_ERROR,
            "inference.cancelled",
            "cancelled".to_owned(),
            "Internal error: cancelled".to_owned(),
        ),
    };
    let r = Rejection::new(code, event, "inference.backend", reason).from(Source::Upstream);
    let r = if code == INTERNAL_ERROR { r.alert() } else { r };
    short(r, message)
}
