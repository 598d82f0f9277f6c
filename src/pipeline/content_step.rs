//! Step: what servers say to the model and the user. Runs on answers to client requests and on
//! server requests:
//!
//! - secrets in results are redacted to `[REDACTED:<kind>]` (RES-03);
//! - a result that tries to steer the model toward secrets or concealment (ATPA, RES-02) is
//!   replaced by a neutral error; milder injection wording passes but taints the session, so a
//!   high-risk call after it needs approval (RES-01);
//! - elicitations asking for credentials are declined on the user's behalf (ELI-01), in both
//!   eras (`elicitation/create`, and elicitation input requests of `input_required`).
//!
//! Every check starts with a cheap scan of the raw line; only a hit pays for a parse.

use serde_json::{json, Value};

use super::Pipeline;
use crate::audit::{Decision, Record};
use crate::checks::elicitation_scan::scan_elicitation;
use std::sync::LazyLock;

use regex::Regex;

use crate::checks::poison_scan::{max_severity, scan_text, Finding, Severity};
use crate::checks::secrets::{find_secrets, redact_json};
use crate::session::Session;
use crate::trust::{self, Observation};

/// What to do with a server answer after the content checks.
pub(super) enum ContentVerdict {
    Pass,
    Rewrite(Vec<u8>),
}

impl Pipeline {
    /// Check the result of an answer to a client request.
    pub(super) fn check_result(
        &self,
        s: &mut Session,
        line: &[u8],
        record: &mut Record,
    ) -> ContentVerdict {
        let Ok(text) = std::str::from_utf8(line) else {
            return ContentVerdict::Pass;
        };
        let secrets = !find_secrets(text).is_empty();
        let mut findings = scan_text::<&str>(text, &[]);
        findings.extend(directives(text));
        let severity = max_severity(&findings);
        let elicits = text.contains("elicitation/create");
        if !secrets && severity.is_none() && !elicits {
            return ContentVerdict::Pass;
        }
        let Ok(mut message) = serde_json::from_slice::<Value>(line) else {
            return ContentVerdict::Pass;
        };
        let Some(result) = message.get_mut("result") else {
            return ContentVerdict::Pass;
        };

        if elicits {
            if let Some(reason) = sensitive_input_request(result) {
                *result = withheld(
                    "asked for a credential through elicitation",
                    &record.audit_id,
                );
                self.alert(
                    record,
                    "elicitation.sensitive_request",
                    &reason,
                    Severity::High,
                );
                return rewrite(&message, record, Decision::Deny);
            }
        }
        if severity >= Some(Severity::High) {
            let kinds: Vec<&str> = findings
                .iter()
                .filter(|f| f.severity >= Severity::High)
                .map(|f| f.kind)
                .collect();
            *result = withheld(
                "tried to instruct the model (hidden or coercive instructions)",
                &record.audit_id,
            );
            let reason = format!("result quarantined: {}", kinds.join(", "));
            self.alert(record, "content.atpa", &reason, Severity::High);
            s.tainted = Some(reason);
            return rewrite(&message, record, Decision::Deny);
        }
        if severity >= Some(Severity::Medium) {
            let kinds: Vec<&str> = findings
                .iter()
                .filter(|f| f.severity >= Severity::Medium)
                .map(|f| f.kind)
                .collect();
            let reason = format!("possible prompt injection in a result ({}); high-risk calls in this session now need approval", kinds.join(", "));
            s.tainted = Some(reason.clone());
            self.alert(
                record,
                "content.injection_suspected",
                &reason,
                Severity::Medium,
            );
        }
        if secrets {
            let kinds = redact_json(result);
            if !kinds.is_empty() {
                let reason = format!("redacted from the result: {}", kinds.join(", "));
                self.alert(record, "dlp.secret_redacted", &reason, Severity::Medium);
                return rewrite(&message, record, Decision::Redact);
            }
        }
        ContentVerdict::Pass
    }

    /// A legacy `elicitation/create` from the server: `Some(answer to the server)` when it asks
    /// for a credential (declined on the user's behalf, never shown).
    pub(super) fn check_elicitation(
        &self,
        params: Option<&str>,
        record: &mut Record,
    ) -> Option<Value> {
        let params: Value = serde_json::from_str(params?).ok()?;
        let findings = scan_elicitation(&params);
        if max_severity(&findings) < Some(Severity::High) {
            return None;
        }
        let kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
        let reason = format!(
            "the server asked the user for a credential ({}); declined on the user's behalf",
            kinds.join(", ")
        );
        self.alert(
            record,
            "elicitation.sensitive_request",
            &reason,
            Severity::High,
        );
        record.decision = Decision::Deny;
        Some(json!({"action": "decline"}))
    }

    fn alert(&self, record: &mut Record, event: &str, reason: &str, severity: Severity) {
        record.event = event.to_owned();
        record.reason = Some(reason.to_owned());
        record.alert = true;
        eprintln!("mcp-warden: {}: {reason}", self.server);
        if let Some(t) = &self.guards.trust {
            let severity = match severity {
                Severity::Low => trust::Severity::Low,
                Severity::Medium => trust::Severity::Medium,
                Severity::High => trust::Severity::High,
                Severity::Critical => trust::Severity::Critical,
            };
            t.record(Observation::Alert { severity });
        }
    }
}

/// What the content checks did to a result, for a transport without a pipeline (`connect`).
#[derive(Debug)]
pub struct Screened {
    /// The bytes to send instead.
    pub bytes: Vec<u8>,
    pub event: &'static str,
    pub reason: String,
}

/// The result checks `wrap` applies (quarantine of coercive instructions, secret redaction),
/// for one server answer `line` to a request of `method`. `None`: pass the bytes unchanged.
/// `connect` talks to servers no warden stands in front of; their results get the same
/// screening as a wrapped server's.
pub fn screen_result(method: &str, line: &[u8], audit_id: &str) -> Option<Screened> {
    if !super::server::carries_content(method) {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let secrets = !find_secrets(text).is_empty();
    let findings = scan_text::<&str>(text, &[]);
    let severity = max_severity(&findings);
    if !secrets && severity < Some(Severity::High) {
        return None;
    }
    let mut message = serde_json::from_slice::<Value>(line).ok()?;
    let result = message.get_mut("result")?;
    let (event, reason) = if severity >= Some(Severity::High) {
        let kinds: Vec<&str> = findings
            .iter()
            .filter(|f| f.severity >= Severity::High)
            .map(|f| f.kind)
            .collect();
        *result = withheld(
            "tried to instruct the model (hidden or coercive instructions)",
            audit_id,
        );
        (
            "content.atpa",
            format!("result quarantined: {}", kinds.join(", ")),
        )
    } else {
        let kinds = redact_json(result);
        if kinds.is_empty() {
            return None;
        }
        (
            "dlp.secret_redacted",
            format!("redacted from the result: {}", kinds.join(", ")),
        )
    };
    let bytes = serde_json::to_vec(&message).ok()?;
    Some(Screened {
        bytes,
        event,
        reason,
    })
}

/// Data that talks to the agent: instructions to gather or publish "everything", or to act
/// against the user's privacy, inside content that should only be information (RES-01: a
/// public issue telling the agent to copy private repositories into a README). Results only:
/// a tool description may legitimately say "list all files".
static DIRECTIVES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(?:to\s+fix\s+this|to\s+resolve\s+this|in\s+order\s+to\s+(?:fix|proceed|continue))\b\s*[:,]?\s*(?:\w+\s+){0,3}?(?:read|list|include|add|send|post|create|open|fetch|copy|push)\b",
        r"|\b(?:include|collect|gather|publish|post|copy)\s+(?:\w+\s+){0,2}?everything\b",
        r"|\blist\s+all\s+(?:\w+\s+){0,2}?(?:repos|repositories|projects|secrets|emails|contacts)\b",
        r"|\b(?:does|do)\s*(?:not|n't)\s+care\s+about\s+(?:privacy|security)\b",
    ))
    .expect("directive regex compiles")
});

fn directives(text: &str) -> Vec<Finding> {
    DIRECTIVES
        .find(text)
        .map(|m| Finding {
            kind: "agent_directive",
            severity: Severity::Medium,
            excerpt: m.as_str().chars().take(80).collect(),
            location: String::new(),
        })
        .into_iter()
        .collect()
}

/// The reason, if any elicitation input request of an `input_required` result asks for a
/// credential.
fn sensitive_input_request(result: &Value) -> Option<String> {
    let requests = result.get("inputRequests")?.as_object()?;
    for (key, req) in requests {
        if req.get("method").and_then(Value::as_str) != Some("elicitation/create") {
            continue;
        }
        let findings = scan_elicitation(req.get("params").unwrap_or(&Value::Null));
        if max_severity(&findings) >= Some(Severity::High) {
            let kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
            return Some(format!(
                "input request {key:?} asks for a credential ({})",
                kinds.join(", ")
            ));
        }
    }
    None
}

/// The neutral error result the model sees instead of a quarantined one.
fn withheld(why: &str, audit_id: &str) -> Value {
    json!({
        "content": [{"type": "text", "text": format!("[mcp-warden] This result was withheld because it {why}. Audit id {audit_id}.")}],
        "isError": true
    })
}

fn rewrite(message: &Value, record: &mut Record, decision: Decision) -> ContentVerdict {
    record.decision = decision;
    match serde_json::to_vec(message) {
        Ok(bytes) => {
            ContentVerdict::Rewrite(crate::codec::escape_line_separators(&bytes).unwrap_or(bytes))
        }
        Err(_) => ContentVerdict::Pass,
    }
}
