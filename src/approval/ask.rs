//! Asking the human through the client (SPEC §6): the `elicitation/create` the proxy sends on
//! its own behalf — legacy era as a request of its own, modern era as the elicitation input
//! request of an `input_required` result — and how the client's answer is read. Pure: no I/O.
//!
//! The form is flat (a boolean `approve`, and `remember` only where the policy allows it), so
//! every client that renders form elicitation can show it; the message names the server, the
//! tool, the risk, the rule that asked, and the arguments' safe view (`view.rs`), so the human
//! decides on what the call really does.

use serde_json::{json, Value};

/// The key of the proxy's own input request in `inputRequests` / `inputResponses`, and the
/// prefix of the ids of its legacy `elicitation/create` requests.
pub const INPUT_KEY: &str = "mcp-warden/approval";

/// What the human is asked about.
pub struct Question<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub risk: &'a str,
    pub rule: &'a str,
    pub reason: &'a str,
    /// The safe view of the arguments (`safe_view`).
    pub arguments: &'a [String],
    /// Offer "remember for this session" (the policy rule says `remember = "session"`).
    pub remember: bool,
}

/// `params` of the `elicitation/create` (form mode) asking for approval.
pub fn elicit_params(q: &Question<'_>) -> Value {
    let mut message = format!(
        "mcp-warden: approve this tool call?\n\nServer: {}\nTool: {}\nRisk: {}\nAsked by: {} ({})\n\nArguments:\n",
        q.server, q.tool, q.risk, q.rule, q.reason
    );
    if q.arguments.is_empty() {
        message.push_str("  (none)\n");
    }
    for line in q.arguments {
        message.push_str("  ");
        message.push_str(line);
        message.push('\n');
    }
    message.push_str("\nOnly an explicit accept with \"approve\" checked runs the call.");
    let mut properties = json!({
        "approve": {
            "type": "boolean",
            "title": "Approve",
            "description": format!("Run {} on {} with the arguments shown", q.tool, q.server),
            "default": false
        }
    });
    if q.remember {
        properties["remember"] = json!({
            "type": "boolean",
            "title": "Remember for this session",
            "description": format!("Also approve later calls of {} with the same argument names until this session ends", q.tool),
            "default": false
        });
    }
    json!({
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": properties,
            "required": ["approve"]
        }
    })
}

/// How the client answered the proxy's elicitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAnswer {
    /// `action: "accept"` with `approve: true`; `remember` as the human ticked it.
    Approved {
        remember: bool,
    },
    /// `action: "accept"` with `approve: false`.
    NotApproved,
    Declined,
    Cancelled,
    /// The answer is not an `ElicitResult` we can read (fail closed).
    Malformed(String),
    /// The client answered with a JSON-RPC error.
    Error(String),
}

impl ClientAnswer {
    /// Why the call was not run, for the -32014 reason.
    pub fn refusal(&self) -> String {
        match self {
            ClientAnswer::Approved { .. } => String::new(),
            ClientAnswer::NotApproved => {
                "the user accepted the form but did not tick \"approve\"".into()
            }
            ClientAnswer::Declined => "the user declined".into(),
            ClientAnswer::Cancelled => "the user cancelled".into(),
            ClientAnswer::Malformed(why) => format!("the client's answer was malformed: {why}"),
            ClientAnswer::Error(why) => format!("the client answered with an error: {why}"),
        }
    }

    /// The outcome word for audit `detail.outcome`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ClientAnswer::Approved { .. } => "approved",
            ClientAnswer::NotApproved => "not_approved",
            ClientAnswer::Declined => "declined",
            ClientAnswer::Cancelled => "cancelled",
            ClientAnswer::Malformed(_) => "malformed",
            ClientAnswer::Error(_) => "client_error",
        }
    }
}

/// Read an `ElicitResult` (`result`) or a JSON-RPC `error` the client sent back.
pub fn read_answer(result: Option<&Value>, error: Option<&Value>) -> ClientAnswer {
    if let Some(e) = error {
        let msg = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return ClientAnswer::Error(crate::checks::unicode_hazards::escape_for_display(msg, 200));
    }
    let Some(r) = result.filter(|r| r.is_object()) else {
        return ClientAnswer::Malformed("the result is not an object".into());
    };
    match r.get("action").and_then(Value::as_str) {
        Some("decline") => ClientAnswer::Declined,
        Some("cancel") => ClientAnswer::Cancelled,
        Some("accept") => {
            let Some(content) = r.get("content").filter(|c| c.is_object()) else {
                return ClientAnswer::Malformed("an accept without content".into());
            };
            let remember = match content.get("remember") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return ClientAnswer::Malformed("\"remember\" is not a boolean".into()),
            };
            match content.get("approve") {
                Some(Value::Bool(true)) => ClientAnswer::Approved { remember },
                Some(Value::Bool(false)) => ClientAnswer::NotApproved,
                // A string "true" is not an explicit boolean approval.
                _ => ClientAnswer::Malformed("\"approve\" is missing or not a boolean".into()),
            }
        }
        _ => ClientAnswer::Malformed("\"action\" is not accept, decline or cancel".into()),
    }
}

/// The shape of a call's arguments for "remember for this session": the tool and its sorted
/// top-level argument names (values may differ; a new argument needs a new approval).
pub fn shape(tool: &str, arguments: Option<&Value>) -> String {
    let mut keys: Vec<&str> = arguments
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    format!("{tool}({})", keys.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(remember: bool) -> Value {
        let args = vec![
            "path: /tmp/x".to_owned(),
            "content: \\u{202e}evil".to_owned(),
        ];
        elicit_params(&Question {
            server: "fs",
            tool: "write_file",
            risk: "high",
            rule: "fs.toml:tool[write_file]",
            reason: "requires approval",
            arguments: &args,
            remember,
        })
    }

    #[test]
    fn the_form_is_flat_and_says_what_is_asked() {
        let p = q(false);
        let m = p["message"].as_str().unwrap();
        for needle in [
            "fs",
            "write_file",
            "high",
            "fs.toml:tool[write_file]",
            "path: /tmp/x",
        ] {
            assert!(m.contains(needle), "{needle} missing from {m}");
        }
        let props = p["requestedSchema"]["properties"].as_object().unwrap();
        assert_eq!(props.keys().collect::<Vec<_>>(), ["approve"]);
        assert!(props.values().all(|v| v["type"] == "boolean"));
        assert!(q(true)["requestedSchema"]["properties"]["remember"].is_object());
    }

    #[test]
    fn only_an_explicit_boolean_accept_approves() {
        let r = |v: Value| read_answer(Some(&v), None);
        assert_eq!(
            r(json!({"action":"accept","content":{"approve":true}})),
            ClientAnswer::Approved { remember: false }
        );
        assert_eq!(
            r(json!({"action":"accept","content":{"approve":true,"remember":true}})),
            ClientAnswer::Approved { remember: true }
        );
        assert_eq!(
            r(json!({"action":"accept","content":{"approve":false}})),
            ClientAnswer::NotApproved
        );
        assert_eq!(r(json!({"action":"decline"})), ClientAnswer::Declined);
        assert_eq!(r(json!({"action":"cancel"})), ClientAnswer::Cancelled);
        for bad in [
            json!({"action":"accept"}),
            json!({"action":"accept","content":{"approve":"true"}}),
            json!({"action":"accept","content":{"approve":1}}),
            json!({"action":"accept","content":{"approve":true,"remember":"yes"}}),
            json!({"action":"ACCEPT","content":{"approve":true}}),
            json!([]),
        ] {
            assert!(
                matches!(r(bad.clone()), ClientAnswer::Malformed(_)),
                "{bad}"
            );
        }
        assert!(matches!(
            read_answer(None, Some(&json!({"code":-1,"message":"no"}))),
            ClientAnswer::Error(_)
        ));
    }

    #[test]
    fn shape_is_the_sorted_argument_names() {
        let a = json!({"path":"/a","content":"x"});
        let b = json!({"content":"other","path":"/b"});
        assert_eq!(shape("w", Some(&a)), shape("w", Some(&b)));
        assert_ne!(
            shape("w", Some(&a)),
            shape("w", Some(&json!({"path":"/a"})))
        );
        assert_ne!(shape("w", Some(&a)), shape("v", Some(&a)));
    }
}
