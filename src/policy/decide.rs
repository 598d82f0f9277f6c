//! `evaluate`: one resolved `ToolPolicy` + the call's arguments → a decision.
//!
//! Pure and stateless: rate limits and trust scores are separate steps (see
//! `ratelimit.rs`, SPEC §7). Checks run in this order, first verdict wins, so
//! a call that would be refused never reaches a human approver:
//! 1. `action = "deny"` → Deny (`policy.denied_tool`);
//! 2. argument shape: `arguments` must be an object (or absent / null);
//! 3. argument rules, in argument-name order. An argument that has a rule but
//!    is absent passes: presence is the tool's input schema's job, and an
//!    absent value cannot carry a path or URL. A present `null` is checked
//!    (and fails string rules). With `deny_other_args`, any argument without
//!    a rule is refused;
//! 4. secrets anywhere in the arguments (values and keys) → Deny
//!    `secret_egress` (RES-04);
//! 5. hidden-text / injection findings of severity High or Critical in any
//!    argument string (whitespace padding, bidi, tag characters, injected
//!    instructions; TPA-04) → Approve, so a human sees the full argument;
//! 6. `action = "approve"` (including every `critical` tool) → Approve;
//! 7. Allow.

use serde_json::Value;

use crate::checks::arg_rules::ArgViolation;
use crate::checks::poison_scan::{scan_text, Severity};
use crate::checks::secrets::find_secrets_in_json;
use crate::policy::file::Action;
use crate::policy::set::ToolPolicy;

/// Why a call is refused; picks the audit event and the JSON-RPC error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyKind {
    /// The tool's action is deny (POL-02).
    ToolDenied,
    /// A `path_under` path outside every root (POL-03, POL-04).
    PathOutsideRoot,
    /// A `path_under` value that is not a clean path at all (POL-06).
    PathInvalid,
    /// `url_hosts` / `deny_private_addresses` (POL-08).
    Ssrf,
    /// Any other argument rule, or malformed arguments (POL-07).
    ArgumentViolation,
    /// A secret in outgoing arguments (RES-04).
    SecretEgress,
}

impl DenyKind {
    pub fn audit_event(self) -> &'static str {
        match self {
            DenyKind::ToolDenied => "policy.denied_tool",
            DenyKind::PathOutsideRoot => "policy.path_outside_root",
            DenyKind::PathInvalid => "policy.path_invalid",
            DenyKind::Ssrf => "policy.ssrf",
            DenyKind::ArgumentViolation => "policy.argument_violation",
            DenyKind::SecretEgress => "dlp.secret_egress",
        }
    }

    /// JSON-RPC error code per the attack corpus: invalid arguments are
    /// `-32602` (invalid params, POL-07); refusals by policy are `-32013`.
    pub fn jsonrpc_code(self) -> i32 {
        match self {
            DenyKind::ArgumentViolation => -32602,
            _ => -32013,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `rule`: the policy rule name (`fetch.toml:tool[fetch]`) for a denied
    /// tool, `tool.arg.rule` (`git_checkout.branch.pattern`) for an argument,
    /// `secret_egress` for secrets. `reason` never echoes argument values.
    Deny {
        rule: String,
        reason: String,
        kind: DenyKind,
    },
    /// Needs a human (SPEC §6 approval). `rule`: the policy rule name, or
    /// `poisoning.<finding kind>` (`poisoning.whitespace_padding`).
    Approve {
        rule: String,
        reason: String,
    },
}

impl Decision {
    /// Audit event name for this decision.
    pub fn audit_event(&self) -> &'static str {
        match self {
            Decision::Allow => "policy.allowed",
            Decision::Deny { kind, .. } => kind.audit_event(),
            // TPA-04's event name for padding; other hidden-text kinds share one.
            Decision::Approve { rule, .. } if rule == "poisoning.whitespace_padding" => {
                "poisoning.padding"
            }
            Decision::Approve { rule, .. } if rule.starts_with("poisoning.") => {
                "poisoning.arguments"
            }
            Decision::Approve { .. } => "approval.required",
        }
    }
}

/// Decide one `tools/call`. `arguments` is `params.arguments`.
pub fn evaluate(policy: &ToolPolicy, arguments: Option<&Value>) -> Decision {
    if policy.action == Action::Deny {
        return Decision::Deny {
            rule: policy.rule_name.clone(),
            reason: format!("tool {:?} is denied by policy", policy.tool),
            kind: DenyKind::ToolDenied,
        };
    }
    let args = match arguments {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            return Decision::Deny {
                rule: format!("{}.arguments", policy.tool),
                reason: "arguments must be a JSON object".into(),
                kind: DenyKind::ArgumentViolation,
            }
        }
    };
    if let Some(args) = args {
        for (name, rule) in &policy.args {
            if let Some(value) = args.get(name) {
                if let Err(v) = rule.check(value) {
                    return arg_denial(policy, name, value, &v);
                }
            }
        }
        if policy.deny_other_args {
            if let Some(extra) = args
                .keys()
                .find(|k| !policy.args.iter().any(|(n, _)| n == *k))
            {
                return Decision::Deny {
                    rule: format!("{}.{extra}.unexpected", policy.tool),
                    reason: format!("argument {extra:?} is not allowed for this tool"),
                    kind: DenyKind::ArgumentViolation,
                };
            }
        }
        if let Some(v) = arguments {
            let kinds = find_secrets_in_json(v);
            if !kinds.is_empty() {
                return Decision::Deny {
                    rule: "secret_egress".into(),
                    reason: format!(
                        "arguments contain a secret ({}); secrets may not leave through tool calls",
                        kinds.join(", ")
                    ),
                    kind: DenyKind::SecretEgress,
                };
            }
            if let Some(d) = hidden_text(v) {
                return d;
            }
        }
    }
    match policy.action {
        Action::Approve => Decision::Approve {
            rule: policy.rule_name.clone(),
            reason: format!(
                "tool {:?} (risk {}) requires approval",
                policy.tool,
                policy.risk.as_str()
            ),
        },
        Action::Allow | Action::Deny => Decision::Allow,
    }
}

fn arg_denial(policy: &ToolPolicy, arg: &str, value: &Value, v: &ArgViolation) -> Decision {
    // path_rule reports "outside the allowed roots" for a clean path in the
    // wrong place, anything else for a malformed one. A `file:` URI that
    // escapes counts as malformed: the corpus files it with the encoding and
    // scheme tricks (POL-06), and a plain path would have been the honest form.
    // A plain `..` traversal is an attempt to climb out of the roots (POL-03); encoded and
    // look-alike forms stay "invalid" (POL-06).
    let climbs = v.reason.contains("'..' component");
    let outside =
        (v.reason.contains("outside the allowed roots") || climbs) && !has_file_uri(value);
    let kind = match v.rule {
        "path_under" if outside => DenyKind::PathOutsideRoot,
        "path_under" => DenyKind::PathInvalid,
        "url_hosts" | "deny_private_addresses" => DenyKind::Ssrf,
        _ => DenyKind::ArgumentViolation,
    };
    Decision::Deny {
        rule: format!("{}.{arg}.{}", policy.tool, v.rule),
        reason: format!("argument {arg:?}: {}", v.reason),
        kind,
    }
}

fn has_file_uri(value: &Value) -> bool {
    let is_uri = |s: &str| s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("file:"));
    match value {
        Value::String(s) => is_uri(s),
        Value::Array(a) => a.iter().filter_map(Value::as_str).any(is_uri),
        _ => false,
    }
}

/// First High/Critical hidden-text finding in any argument string or key.
/// Shadowing is not checked here (no other-server tool list: an argument
/// naming another tool is ordinary).
fn hidden_text(v: &Value) -> Option<Decision> {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        let found = match v {
            Value::String(s) => worst(s),
            Value::Array(a) => {
                stack.extend(a.iter());
                None
            }
            Value::Object(m) => {
                stack.extend(m.values());
                m.keys().find_map(|k| worst(k))
            }
            _ => None,
        };
        if let Some(kind) = found {
            return Some(Decision::Approve {
                rule: format!("poisoning.{kind}"),
                reason: format!(
                    "an argument contains {kind} (hidden or injected text); \
                     the approver must review the full argument"
                ),
            });
        }
    }
    None
}

fn worst(s: &str) -> Option<&'static str> {
    scan_text::<&str>(s, &[])
        .into_iter()
        .filter(|f| f.severity >= Severity::High)
        .max_by_key(|f| f.severity)
        .map(|f| f.kind)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
