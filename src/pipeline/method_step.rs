//! Step: the method name itself. Policy is keyed on exact method names (`tools/call`), but a
//! peer's dispatcher may be more forgiving than we are: if `Tools/Call`, `tools/call ` or
//! `tools/call\u0000` reached a server that lowercases or trims, it would run a tool call that
//! no policy ever saw. So a method must be a well-formed name, and a name that differs from a
//! real MCP method only by case is refused as confusable, in both directions.

use crate::errors::{Rejection, INVALID_REQUEST};

/// Longest method name accepted; the longest MCP method is well under 64 bytes.
pub const MAX_METHOD_LEN: usize = 128;

/// Every method the MCP schemas (2025-11-25, 2026-07-28) define.
const KNOWN: &[&str] = &[
    "completion/complete",
    "elicitation/create",
    "initialize",
    "logging/setLevel",
    "notifications/cancelled",
    "notifications/elicitation/complete",
    "notifications/initialized",
    "notifications/message",
    "notifications/progress",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
    "notifications/resources/updated",
    "notifications/roots/list_changed",
    "notifications/subscriptions/acknowledged",
    "notifications/tasks/status",
    "notifications/tools/list_changed",
    "ping",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/subscribe",
    "resources/templates/list",
    "resources/unsubscribe",
    "roots/list",
    "sampling/createMessage",
    "server/discover",
    "subscriptions/listen",
    "tasks/cancel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tools/call",
    "tools/list",
];

/// `Ok` when `method` is a well-formed name that is not a look-alike of a real method.
pub fn check_method(method: &str) -> Result<(), Rejection> {
    if let Err(why) = well_formed(method) {
        return Err(super::short(Rejection::new(
            INVALID_REQUEST,
            "rpc.method_malformed",
            "jsonrpc.method_malformed",
            format!("method name {:?} {why}; method names are ASCII letters, digits, '_', '.', '-' in segments separated by '/'", shorten(method)),
        )
        .alert(), format!("Invalid Request: malformed method name ({why})")));
    }
    if let Some(real) = confusable_with(method) {
        return Err(super::short(Rejection::new(
            INVALID_REQUEST,
            "rpc.method_confusable",
            "jsonrpc.method_confusable",
            format!("method {method:?} differs from the MCP method {real:?} only by letter case; send the exact name"),
        )
        .alert(), format!("Invalid Request: method is a look-alike of {real}")));
    }
    Ok(())
}

fn well_formed(method: &str) -> Result<(), &'static str> {
    if method.is_empty() {
        return Err("is empty");
    }
    if method.len() > MAX_METHOD_LEN {
        return Err("is too long");
    }
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    for segment in method.split('/') {
        if segment.is_empty() {
            return Err("has an empty '/' segment");
        }
        if !segment.bytes().all(ok) {
            return Err("contains a character outside the allowed set (spaces and control characters included)");
        }
    }
    Ok(())
}

/// The real method `method` would be mistaken for by a case-insensitive dispatcher.
fn confusable_with(method: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(method) && **k != method)
        .copied()
}

fn shorten(method: &str) -> String {
    method.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_and_custom_methods_pass() {
        for m in KNOWN {
            assert!(check_method(m).is_ok(), "{m}");
        }
        for m in ["x-vendor/do_thing", "acme.tools/v1.run", "$x"] {
            let r = check_method(m);
            assert_eq!(r.is_ok(), m != "$x", "{m}");
        }
    }

    #[test]
    fn confusable_and_malformed_names_are_refused() {
        for (m, rule) in [
            ("Tools/Call", "jsonrpc.method_confusable"),
            ("TOOLS/LIST", "jsonrpc.method_confusable"),
            ("logging/setlevel", "jsonrpc.method_confusable"),
            ("tools/call ", "jsonrpc.method_malformed"),
            (" tools/call", "jsonrpc.method_malformed"),
            ("tools/call\u{0}", "jsonrpc.method_malformed"),
            ("tools/call\n", "jsonrpc.method_malformed"),
            ("tools//call", "jsonrpc.method_malformed"),
            ("/tools/call", "jsonrpc.method_malformed"),
            ("", "jsonrpc.method_malformed"),
            ("tools/cäll", "jsonrpc.method_malformed"),
        ] {
            let r = check_method(m).expect_err(m);
            assert_eq!(r.rule, rule, "{m:?}");
            assert_eq!(r.code, INVALID_REQUEST);
        }
        assert!(check_method(&"a".repeat(MAX_METHOD_LEN + 1)).is_err());
    }
}
