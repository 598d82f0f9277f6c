//! Step: approval in the modern era (2026-07-28), where the proxy cannot send a request of its
//! own: the call is answered with `resultType: "input_required"` carrying an elicitation input
//! request and an authenticated `requestState` (`approval/state.rs`). The client's retry with
//! `inputResponses` + `requestState` is checked — MAC, expiry, same call, not used before —
//! and, on an explicit approval, forwarded as the original call with the proxy's two fields
//! removed: the server never sees the proxy's round. Everything else is -32014.
//!
//! On `serve`'s stateless route the state is bound to the request's verified key (else the
//! route) instead of a session, and spent nonces are kept process-wide (`ask_stateless`).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::hold::{lock, not_granted, Admit};
use super::Pipeline;
use crate::approval::ask::{self, ClientAnswer};
use crate::approval::state;
use crate::audit::{Decision, Record};
use crate::codec::Envelope;
use crate::policy::Risk;
use crate::session::Session;

/// Why a call needs approval, and whether the answer may be remembered (its shape).
pub(super) struct Round {
    pub risk: Risk,
    pub rule: String,
    pub reason: String,
    pub shape: Option<String>,
}

/// Approved calls remembered for the server's own rounds (bounded; when full of live ones, a
/// continuation is asked about again — never the other way round).
const MAX_APPROVED: usize = 1024;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Pipeline {
    /// A modern call that needs approval: its first round (answer `input_required`) or its
    /// retry (verify, then forward without the proxy's fields, or refuse).
    pub(super) fn approval_round(
        &self,
        s: &mut Session,
        env: &Envelope,
        tool: &str,
        arguments: Option<&Value>,
        round: Round,
        record: &mut Record,
    ) -> Result<Admit, crate::errors::Rejection> {
        let params: Map<String, Value> = env
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        let digest = state::call_digest("tools/call", tool, arguments);
        let presented = params.get("requestState").and_then(Value::as_str);
        let refuse = |why: &str, event: &'static str| {
            let mut r = not_granted(tool, why);
            r.event = event;
            r.rule = round.rule.clone();
            r
        };
        let now = unix_now();
        if presented.is_some_and(|p| !state::is_ours(p)) && self.approved_recently(s, &digest, now)
        {
            // The server's own round (its requestState) of the very call the human approved:
            // part of that call, not a new one to ask about.
            record.event = "approval.continued".into();
            record.rule = Some(round.rule.clone());
            record.reason = Some(
                "the server's own input_required round of a call approved moments ago (same tool and arguments)"
                    .into(),
            );
            return Ok(Admit::Forward);
        }
        let Some(presented) = presented.filter(|p| state::is_ours(p)) else {
            return self.input_required(s, env, tool, arguments, &round, &digest, record);
        };
        let checked = state::open(presented, &digest, self.state_binding(s), now)
            .and_then(|nonce| self.spend(s, nonce, state::expiry(presented), now));
        if let Err(bad) = checked {
            record.detail = Some(json!({"approval": {
                "channel": "client_input_required",
                "decided_by": "proxy",
                "outcome": "state_refused",
            }}));
            return Err(refuse(bad.reason(), "approval.state_refused"));
        }
        let answer = match params
            .get("inputResponses")
            .and_then(|r| r.get(ask::INPUT_KEY))
        {
            Some(v) => ask::read_answer(Some(v), None),
            None => ClientAnswer::Malformed(format!(
                "the retry has no inputResponses[{:?}]",
                ask::INPUT_KEY
            )),
        };
        let detail = |outcome: &str, remembered: Option<&String>| {
            json!({"approval": {
                "channel": "client_input_required",
                "decided_by": "client elicitation (input_required)",
                "outcome": outcome,
                "remembered": remembered,
            }})
        };
        let ClientAnswer::Approved { remember } = answer else {
            record.detail = Some(detail(answer.outcome(), None));
            return Err(refuse(&answer.refusal(), "approval.not_granted"));
        };
        let remembered = match (&round.shape, remember) {
            (Some(shape), true) => {
                s.remembered.insert(shape.clone());
                Some(shape)
            }
            _ => None,
        };
        let bytes = without_our_fields(env, params)
            .ok_or_else(|| refuse("the call could not be rebuilt", "approval.not_granted"))?;
        // The server may answer with its own input_required: its retries continue this call.
        let until = now + self.approval_timeout().as_secs();
        self.remember_approved(s, digest.clone(), until, now);
        record.decision = Decision::Allow;
        record.event = "approval.granted".into();
        record.rule = Some(round.rule.clone());
        record.reason = Some(match remembered {
            Some(shape) => format!(
                "approved by the client's elicitation (input_required); remembered for this session: {shape}"
            ),
            None => "approved by the client's elicitation (input_required)".into(),
        });
        record.detail = Some(detail("approved", remembered));
        Ok(Admit::Rewrite(bytes))
    }

    /// What a state is bound to: the session, or on a stateless route the key or route
    /// (`Pipeline::ask_stateless`).
    fn state_binding<'a>(&'a self, s: &'a Session) -> &'a str {
        self.holds.asks.binding.get().map_or(&s.id, String::as_str)
    }

    /// Spend a state's nonce: in the session, or process-wide on a stateless route (where the
    /// session dies with the request and would forget it).
    fn spend(
        &self,
        s: &mut Session,
        nonce: String,
        expires: u64,
        now: u64,
    ) -> Result<(), state::Bad> {
        match self.holds.asks.binding.get() {
            Some(_) => lock(state::shared()).spent.spend(nonce, expires, now),
            None => s.mrtr_spent.spend(nonce, expires, now),
        }
    }

    /// Whether the human approved this very call (digest) moments ago, for this session or
    /// this stateless binding.
    fn approved_recently(&self, s: &Session, digest: &str, now: u64) -> bool {
        let live = |until: Option<&u64>| until.is_some_and(|u| *u >= now);
        match self.holds.asks.binding.get() {
            Some(b) => live(
                lock(state::shared())
                    .approved
                    .get(&format!("{b}\n{digest}")),
            ),
            None => live(s.mrtr_approved.get(digest)),
        }
    }

    fn remember_approved(&self, s: &mut Session, digest: String, until: u64, now: u64) {
        match self.holds.asks.binding.get() {
            Some(b) => {
                let key = format!("{b}\n{digest}");
                remember_in(&mut lock(state::shared()).approved, key, until, now);
            }
            None => remember_in(&mut s.mrtr_approved, digest, until, now),
        }
    }

    /// First round: answer the call with the approval question and a fresh state.
    #[allow(clippy::too_many_arguments)]
    fn input_required(
        &self,
        s: &Session,
        env: &Envelope,
        tool: &str,
        arguments: Option<&Value>,
        round: &Round,
        digest: &str,
        record: &mut Record,
    ) -> Result<Admit, crate::errors::Rejection> {
        let preview = arguments
            .map(crate::approval::safe_view)
            .unwrap_or_default();
        let params = ask::elicit_params(&ask::Question {
            server: &self.server,
            tool,
            risk: round.risk.as_str(),
            rule: &round.rule,
            reason: &round.reason,
            arguments: &preview,
            remember: round.shape.is_some(),
        });
        let expires = unix_now() + self.approval_timeout().as_secs();
        let mut input_requests = Map::new();
        input_requests.insert(
            ask::INPUT_KEY.into(),
            json!({"method": "elicitation/create", "params": params}),
        );
        let result = json!({
            "resultType": "input_required",
            "inputRequests": input_requests,
            "requestState": state::seal(digest, self.state_binding(s), expires),
        });
        let id = env
            .id
            .as_ref()
            .map_or_else(|| "null".into(), |i| i.to_json());
        let answer = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes();
        record.decision = Decision::Hold;
        record.event = "approval.input_required".into();
        record.rule = Some(round.rule.clone());
        record.reason = Some(format!(
            "asking the user through the client (input_required, valid until {expires}): {}",
            round.reason
        ));
        Ok(Admit::Answer(answer))
    }
}

/// Bounded (when full of live ones, a continuation is asked about again — never the other
/// way round).
fn remember_in(map: &mut HashMap<String, u64>, key: String, until: u64, now: u64) {
    if map.len() >= MAX_APPROVED {
        map.retain(|_, u| *u >= now);
    }
    if map.len() < MAX_APPROVED {
        map.insert(key, until);
    }
}

/// The retried call as the server must see it: the proxy's `requestState` and its entry in
/// `inputResponses` removed (the whole member when nothing else is left).
fn without_our_fields(env: &Envelope, mut params: Map<String, Value>) -> Option<Vec<u8>> {
    params.remove("requestState");
    if let Some(Value::Object(r)) = params.get_mut("inputResponses") {
        r.remove(ask::INPUT_KEY);
        if r.is_empty() {
            params.remove("inputResponses");
        }
    }
    let mut msg = Map::new();
    msg.insert("jsonrpc".into(), json!("2.0"));
    let id: Value = serde_json::from_str(&env.id.as_ref()?.to_json()).ok()?;
    msg.insert("id".into(), id);
    msg.insert("method".into(), json!(env.method()));
    msg.insert("params".into(), Value::Object(params));
    let bytes = serde_json::to_vec(&Value::Object(msg)).ok()?;
    Some(crate::codec::escape_line_separators(&bytes).unwrap_or(bytes))
}
