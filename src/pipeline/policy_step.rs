//! Step: policy (SPEC §6) for one `tools/call`, after signatures and pins. In order:
//! the tool's action and argument rules (`policy::evaluate`), then the rate limit, then the
//! server's trust against the tool's risk, and finally approval — so that nothing a rule would
//! refuse ever reaches a human, and a flood never reaches the trust score or the queue.

use serde_json::value::RawValue;
use serde_json::Value;

use super::Pipeline;
use crate::audit::Record;
use crate::checks::path_rule::path_under;
use crate::errors::{Rejection, POLICY_DENIED, RATE_LIMITED, TRUST_TOO_LOW};
use crate::policy::{evaluate, Decision, DenyKind, RateDecision, Risk, ServerRef};
use crate::session::Session;
use crate::trust::Observation;

use std::sync::Arc;

/// What the policy wants done with a call that was not refused outright.
#[derive(Debug, Clone, PartialEq)]
pub enum CallPlan {
    Forward {
        risk: Risk,
    },
    /// Hold the call until a human decides.
    Approve {
        risk: Risk,
        rule: String,
        reason: String,
        /// The rule allows "remember for this session" (`remember = "session"`). Never for
        /// approvals a detector asked for (poisoning): those are about this call's content.
        remember: bool,
    },
}

impl Pipeline {
    /// A `file:` URI a client asks the server to read is a path like any tool argument: held to
    /// the roots the policy gives this server's tools (`$SERVER_ARGS` for the filesystem pack),
    /// symlinks resolved. Servers whose policy names no paths, and other schemes, pass.
    pub(super) fn check_resource_uri(
        &self,
        uri: &str,
        record: &mut Record,
    ) -> Result<(), Rejection> {
        if !uri
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("file:"))
        {
            return Ok(());
        }
        let Some(handle) = self.guards.policy.as_ref() else {
            return Ok(());
        };
        let set = handle.current();
        let server = ServerRef {
            name: &self.server,
            argv: &self.guards.server_argv,
        };
        let Some(roots) = set.path_roots(&server) else {
            return Ok(());
        };
        record.policy_version = Some(set.version().chars().take(16).collect());
        path_under(uri, &roots).map_err(|v| {
            let kind = if v.reason.contains("outside the allowed roots") {
                DenyKind::PathOutsideRoot
            } else {
                DenyKind::PathInvalid
            };
            Rejection::new(
                i64::from(kind.jsonrpc_code()),
                kind.audit_event(),
                "resources/read.uri.path_under",
                format!("resource uri: {}", v.reason),
            )
            .alert()
        })
    }

    pub(super) fn check_policy(
        &self,
        s: &mut Session,
        tool: &str,
        arguments: Option<&RawValue>,
        record: &mut Record,
    ) -> Result<CallPlan, Rejection> {
        // Unparseable arguments cannot happen after strict parsing; `Null` fails every rule.
        let args: Option<Value> =
            arguments.map(|raw| serde_json::from_str(raw.get()).unwrap_or(Value::Null));
        // Before any policy: no rule can allow a tool to touch the proxy's own state.
        if let Some(reason) = args
            .as_ref()
            .and_then(|a| self.guards.proxy_state.check(a).err())
        {
            return Err(Rejection::new(
                POLICY_DENIED,
                "policy.proxy_state",
                "builtin.proxy_state",
                format!("{tool}: {reason}"),
            )
            .alert());
        }
        let Some(handle) = self.guards.policy.as_ref() else {
            return Ok(CallPlan::Forward { risk: Risk::Medium });
        };
        // One policy version decides the whole call, approval wait included.
        let set = handle.current();
        record.policy_version = Some(set.version().chars().take(16).collect());
        let policy = match s.policy_cache.get(tool) {
            Some((version, p)) if version == set.version() => p.clone(),
            _ => {
                let server = ServerRef {
                    name: &self.server,
                    argv: &self.guards.server_argv,
                };
                let p = Arc::new(set.resolve(&server, tool, s.tool_annotations.get(tool)));
                // Bounded: one entry per tool the server listed (and a few guesses).
                if s.policy_cache.len() > 4096 {
                    s.policy_cache.clear();
                }
                s.policy_cache
                    .insert(tool.to_owned(), (set.version().to_owned(), p.clone()));
                p
            }
        };
        let decision = evaluate(&policy, args.as_ref());
        let trust = self.guards.trust.as_ref();
        if let Decision::Deny { rule, reason, kind } = &decision {
            if let Some(t) = trust {
                t.record(Observation::CallDenied);
            }
            return Err(Rejection::new(
                i64::from(kind.jsonrpc_code()),
                kind.audit_event(),
                rule.clone(),
                reason.clone(),
            )
            .alert());
        }
        if let Some(rate) = policy.rate {
            let identity = record.kid.clone().unwrap_or_else(|| "local".into());
            match self
                .guards
                .limiter
                .check(&identity, &self.server, tool, rate)
            {
                RateDecision::Ok => {}
                RateDecision::Limited { retry_after_ms } => {
                    return Err(Rejection::new(
                        RATE_LIMITED,
                        "ratelimit.exceeded",
                        format!("{}.rate", policy.rule_name),
                        format!("more than {rate} calls of {tool}; retry in {retry_after_ms} ms"),
                    )
                    .with_extra("retry_after_ms", Value::from(retry_after_ms))
                    .alert());
                }
                // `[cluster]` fails closed (enforce) while the shared count is unknown: the
                // same code and Retry-After a client already handles.
                RateDecision::Unavailable {
                    retry_after_ms,
                    reason,
                } => {
                    return Err(Rejection::new(
                        RATE_LIMITED,
                        "cluster.unavailable",
                        format!("{}.rate", policy.rule_name),
                        reason,
                    )
                    .with_extra("retry_after_ms", Value::from(retry_after_ms)));
                }
            }
        }
        if let Some(t) = trust {
            let th = &self.guards.thresholds;
            let required = policy.required_trust(th.low, th.medium, th.high);
            let score = t.score();
            if score < required {
                // A server we have observed nothing about has no score yet, only the neutral
                // starting value: the gate waits for evidence, and says so in the audit.
                let measured = t.report().factors.iter().any(|f| f.value.is_some());
                if measured {
                    // Not recorded as the server's non-compliance: a refusal the gate itself
                    // caused would lower the score further and lock the server out for good.
                    return Err(Rejection::new(
                        TRUST_TOO_LOW,
                        "trust.below_threshold",
                        format!("{}.min_trust", policy.rule_name),
                        format!(
                            "server {} has trust {score:.4}, below the {required:.4} that {} risk tool {tool} requires; see `mcp-warden trust {}`",
                            self.server,
                            policy.risk.as_str(),
                            self.server
                        ),
                    )
                    .with_extra("score", Value::from(score))
                    .with_extra("threshold", Value::from(required))
                    .alert());
                }
                record.reason = Some(format!(
                    "trust gate skipped: no observations of {} yet",
                    self.server
                ));
            }
        }
        if let Some(t) = trust {
            t.record(Observation::CallAllowed);
        }
        Ok(match decision {
            Decision::Approve { rule, reason } => CallPlan::Approve {
                risk: policy.risk,
                remember: policy.remember && rule == policy.rule_name,
                rule,
                reason,
            },
            _ => CallPlan::Forward { risk: policy.risk },
        })
    }
}
