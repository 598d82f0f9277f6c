//! The safe view of a held call's arguments that approvers see (`approvals`, admin API): enough
//! to decide (paths, URLs, the first lines of content), nothing that can fool or leak — secrets
//! redacted, long values cut, control and bidi characters shown as escapes.

use serde_json::Value;

use crate::checks::secrets;
use crate::checks::unicode_hazards::escape_for_display;

/// Lines shown at most, characters per value, lines of a multi-line string.
const MAX_LINES: usize = 24;
const MAX_CHARS: usize = 160;
const CONTENT_LINES: usize = 3;

/// Argument names whose values are secrets whatever they look like.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "credential",
];

/// `name: value` per leaf of the arguments, in order, bounded.
pub fn safe_view(arguments: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0usize;
    leaves(arguments, &mut String::new(), &mut out, &mut total);
    if total > out.len() {
        out.push(format!("… {} more values not shown", total - out.len()));
    }
    out
}

fn leaves(v: &Value, at: &mut String, out: &mut Vec<String>, total: &mut usize) {
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(&escape_for_display(k, 40));
                leaves(item, at, out, total);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                leaves(item, at, out, total);
                at.truncate(len);
            }
        }
        leaf => {
            *total += 1;
            if out.len() >= MAX_LINES {
                return;
            }
            let name = if at.is_empty() { "arguments" } else { at };
            out.push(format!("{name}: {}", show(name, leaf)));
        }
    }
}

fn show(name: &str, v: &Value) -> String {
    let lower = name.to_ascii_lowercase();
    let last = lower.rsplit('.').next().unwrap_or(&lower);
    if SECRET_NAMES.iter().any(|s| last.contains(s)) && !v.is_null() {
        return "[REDACTED:by-name]".into();
    }
    let Value::String(s) = v else {
        return v.to_string();
    };
    let text = secrets::redact(s).unwrap_or_else(|| s.clone());
    let line_count = text.lines().count();
    let head: Vec<&str> = text.lines().take(CONTENT_LINES).collect();
    let mut shown = escape_for_display(&head.join("\n"), MAX_CHARS);
    if line_count > CONTENT_LINES {
        shown.push_str(&format!(" ⟨+{} lines⟩", line_count - CONTENT_LINES));
    }
    // Already escaped (controls, line breaks, bidi): quoted, not escaped twice.
    format!("\"{shown}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_urls_and_content_heads_are_shown_safely() {
        let view = safe_view(&json!({
            "path": "/home/u/report.txt",
            "url": "https://example.com/a?b=1",
            "content": "line one\nline two\nline three\nline four\nline five",
            "auth": {"password": "hunter2"},
            "note": "key AKIAIOSFODNN7EXAMPLE here",
            "bidi": "abc\u{202e}fed\u{1b}[31m",
            "n": 3,
            "long": "x".repeat(1000)
        }));
        let text = view.join("\n");
        assert!(text.contains("path: \"/home/u/report.txt\""), "{text}");
        assert!(
            text.contains("url: \"https://example.com/a?b=1\""),
            "{text}"
        );
        assert!(
            text.contains("line three") && !text.contains("line four"),
            "{text}"
        );
        assert!(text.contains("⟨+2 lines⟩"), "{text}");
        assert!(text.contains("auth.password: [REDACTED:by-name]") && !text.contains("hunter2"));
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
        assert!(
            !text.contains('\u{202e}') && !text.contains('\u{1b}'),
            "{text}"
        );
        assert!(text.contains("n: 3"));
        assert!(view.iter().all(|l| l.chars().count() < 260), "{text}");
    }

    #[test]
    fn bounded() {
        let many: serde_json::Map<String, Value> =
            (0..100).map(|i| (format!("k{i:03}"), json!(i))).collect();
        let view = safe_view(&Value::Object(many));
        assert_eq!(view.len(), MAX_LINES + 1);
        assert!(view.last().unwrap().contains("76 more values"));
    }
}
