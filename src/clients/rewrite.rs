//! The format-preserving edits behind install and uninstall.
//!
//! Each function returns a few [`Edit`]s (replace this byte span with that
//! text) limited to the values being changed; everything else in the file —
//! comments, key order, indentation, line endings — is left as it was.
//! Wrapping is designed to be undone *textually* from the wrapped entry
//! alone, so uninstall restores the original bytes even without a backup:
//! * the original command literal is copied verbatim (escapes and all) into
//!   the args, and copied back on uninstall;
//! * the wrap prefix is inserted in front of the first original arg, so
//!   removing "first prefix item .. first original arg" undoes it exactly;
//! * an `args` member we had to add goes right after `command` and is
//!   removed with the separator before it.

use super::jsonc::Node;
use super::splice::{
    array_sep, colon, delete_member, fallback_sep, lit, member, member_sep, text, Edit,
};

/// How to bring back a URL entry: the key literal (`"url"`/`"serverUrl"`)
/// and, when the entry has a `type`, its original value literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRestore {
    pub key_text: String,
    pub type_text: Option<String>,
}

/// `{"command": C, "args": [A…]}` → `{"command": BIN, "args": ["wrap",
/// "--server", NAME, "--", C, A…]}`; other keys untouched.
pub fn wrap_stdio(src: &str, entry: &Node, name: &str, bin: &str) -> Result<Vec<Edit>, String> {
    let (ci, cmd) = member(entry, "command").ok_or("entry has no command")?;
    if cmd.as_str().is_none() {
        return Err("command is not a string".into());
    }
    let col = colon(src, entry, ci);
    let fallback = fallback_sep(&col);
    let mut edits = vec![Edit {
        span: cmd.span().clone(),
        text: lit(bin),
    }];
    let prefix = [
        lit("wrap"),
        lit("--server"),
        lit(name),
        lit("--"),
        text(src, cmd.span()),
    ];
    match member(entry, "args") {
        Some((_, arr @ Node::Array { items, .. })) if !items.is_empty() => {
            let sep = array_sep(src, arr, fallback);
            let ins: String = prefix.iter().map(|p| format!("{p},{sep}")).collect();
            edits.push(Edit {
                span: items[0].span().start..items[0].span().start,
                text: ins,
            });
        }
        Some((_, arr @ Node::Array { .. })) => {
            // Was `[]`: insert compactly, which is how uninstall tells this
            // apart from an `args` member we added ourselves.
            let at = arr.span().start + 1;
            edits.push(Edit {
                span: at..at,
                text: prefix.join(","),
            });
        }
        Some(_) => return Err("args is not an array".into()),
        None => {
            // Always ", " inside: uninstall tells this from a former `[]`
            // by that (see unwrap_stdio).
            let at = cmd.span().end;
            let ins = format!(
                ",{}{}{col}[{}]",
                member_sep(src, entry, fallback),
                lit("args"),
                prefix.join(", ")
            );
            edits.push(Edit {
                span: at..at,
                text: ins,
            });
        }
    }
    Ok(edits)
}

/// `{"type": "http", "url": U, …}` → `{"type": "stdio", "command": BIN,
/// "args": ["connect", U, "--server", NAME], …}`. The URL literal is kept
/// verbatim in the args; the `url` member becomes `command` + `args` in place.
pub fn wrap_http(
    src: &str,
    entry: &Node,
    url_key: &str,
    name: &str,
    bin: &str,
) -> Result<Vec<Edit>, String> {
    let (ui, url) = member(entry, url_key).ok_or("entry has no url")?;
    if entry.member_index("command").is_some() || entry.member_index("args").is_some() {
        return Err("entry has both a url and a command".into());
    }
    let key_span = &entry.members()[ui].key_span;
    let col = colon(src, entry, ui);
    let fallback = fallback_sep(&col);
    let args = [
        lit("connect"),
        text(src, url.span()),
        lit("--server"),
        lit(name),
    ]
    .join(&format!(",{fallback}"));
    let new = format!(
        "{}{col}{},{}{}{col}[{args}]",
        lit("command"),
        lit(bin),
        member_sep(src, entry, fallback),
        lit("args"),
    );
    let mut edits = vec![Edit {
        span: key_span.start..url.span().end,
        text: new,
    }];
    if let Some((_, t @ Node::Str { .. })) = member(entry, "type") {
        edits.push(Edit {
            span: t.span().clone(),
            text: lit("stdio"),
        });
    }
    Ok(edits)
}

/// Undoes [`wrap_stdio`] (or a hand-written wrap): the command comes back
/// from args[`cmd_index`], and the prefix before it is removed.
pub fn unwrap_stdio(src: &str, entry: &Node, cmd_index: usize) -> Result<Vec<Edit>, String> {
    let (_, cmd) = member(entry, "command").ok_or("entry has no command")?;
    let (ai, arr) = member(entry, "args").ok_or("entry has no args")?;
    let items = arr.items();
    let inner = items.get(cmd_index).ok_or("wrapped args too short")?;
    if inner.as_str().is_none() {
        return Err("wrapped command is not a string".into());
    }
    let mut edits = vec![Edit {
        span: cmd.span().clone(),
        text: text(src, inner.span()),
    }];
    let first = items[0].span().start;
    if let Some(next) = items.get(cmd_index + 1) {
        edits.push(Edit {
            span: first..next.span().start,
            text: String::new(),
        });
    } else {
        let body = &src[first..inner.span().end];
        let compact = items[..=cmd_index]
            .windows(2)
            .all(|w| &src[w[0].span().end..w[1].span().start] == ",");
        if compact && !body.contains('\n') {
            // Originally `[]` (see wrap_stdio).
            edits.push(Edit {
                span: first..inner.span().end,
                text: String::new(),
            });
        } else {
            edits.push(delete_member(src, entry, ai));
        }
    }
    Ok(edits)
}

/// Undoes [`wrap_http`]: `command` + `args` become the URL member again, and
/// a `"type": "stdio"` goes back to its original value.
pub fn unwrap_http(
    src: &str,
    entry: &Node,
    url_index: usize,
    restore: &UrlRestore,
) -> Result<Vec<Edit>, String> {
    let (ci, cmd) = member(entry, "command").ok_or("entry has no command")?;
    let (ai, arr) = member(entry, "args").ok_or("entry has no args")?;
    let url = arr.items().get(url_index).ok_or("wrapped args too short")?;
    let new = format!(
        "{}{}{}",
        restore.key_text,
        colon(src, entry, ci),
        text(src, url.span())
    );
    let cmd_key = &entry.members()[ci].key_span;
    let mut edits = Vec::new();
    if ai == ci + 1 {
        edits.push(Edit {
            span: cmd_key.start..arr.span().end,
            text: new,
        });
    } else {
        edits.push(Edit {
            span: cmd_key.start..cmd.span().end,
            text: new,
        });
        edits.push(delete_member(src, entry, ai));
    }
    if let Some((_, t)) = member(entry, "type") {
        if t.as_str() == Some("stdio") {
            let original = restore.type_text.clone().unwrap_or_else(|| lit("http"));
            edits.push(Edit {
                span: t.span().clone(),
                text: original,
            });
        }
    }
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::jsonc::{parse, Dialect};
    use crate::clients::splice::apply;

    fn entry_of(src: &str) -> Node {
        parse(src, Dialect::Jsonc).unwrap()
    }

    fn roundtrip_stdio(src: &str, expect_args: serde_json::Value) {
        let e = entry_of(src);
        let wrapped = apply(src, wrap_stdio(src, &e, "s", "/bin/mcp-warden").unwrap()).unwrap();
        let w = entry_of(&wrapped);
        assert_eq!(w.get("command").unwrap().as_str(), Some("/bin/mcp-warden"));
        assert_eq!(w.get("args").unwrap().to_value(), expect_args, "{wrapped}");
        let back = apply(&wrapped, unwrap_stdio(&wrapped, &w, 4).unwrap()).unwrap();
        assert_eq!(back, src);
    }

    #[test]
    fn stdio_roundtrips_in_every_args_shape() {
        let full = serde_json::json!(["wrap", "--server", "s", "--", "npx", "-y", "pkg"]);
        roundtrip_stdio(r#"{"command": "npx", "args": ["-y", "pkg"]}"#, full.clone());
        roundtrip_stdio("{\r\n\t\"command\": \"npx\",\r\n\t\"args\": [\r\n\t\t\"-y\",\r\n\t\t\"pkg\"\r\n\t]\r\n}", full);
        let bare = serde_json::json!(["wrap", "--server", "s", "--", "C:\\bin\\x.exe"]);
        roundtrip_stdio(r#"{"command": "C:\\bin\\x.exe"}"#, bare.clone());
        roundtrip_stdio(
            "{\n  \"command\": \"C:\\\\bin\\\\x.exe\",\n  \"env\": {}\n}",
            bare.clone(),
        );
        roundtrip_stdio(
            r#"{"command": "C:\\bin\\x.exe", "args": [ ]}"#,
            bare.clone(),
        );
        roundtrip_stdio(r#"{"args": [], "command": "C:\u005cbin\u005cx.exe"}"#, bare);
    }

    #[test]
    fn multiline_args_keep_their_indentation() {
        let src = "{\n    \"command\": \"uvx\",\n    \"args\": [\n        \"a\"\n    ]\n}";
        let e = entry_of(src);
        let out = apply(src, wrap_stdio(src, &e, "n", "/w").unwrap()).unwrap();
        assert!(
            out.contains("[\n        \"wrap\",\n        \"--server\","),
            "{out}"
        );
    }

    #[test]
    fn http_roundtrips_with_type_and_windsurf_key() {
        let cases = [
            (
                r#"{"type": "http", "url": "https://h/mcp", "headers": {"A": "b"}}"#,
                "url",
                "\"http\"",
            ),
            (
                "{\n  \"serverUrl\": \"https://h/sse\"\n}",
                "serverUrl",
                "\"http\"",
            ),
            (
                "{\n  \"url\": \"https://h/sse\",\n  \"type\": \"sse\"\n}",
                "url",
                "\"sse\"",
            ),
        ];
        for (src, key, ty) in cases {
            let e = entry_of(src);
            let wrapped = apply(src, wrap_http(src, &e, key, "r", "/w").unwrap()).unwrap();
            let w = entry_of(&wrapped);
            assert_eq!(w.get(key).map(|_| ()), None);
            assert_eq!(w.get("args").unwrap().to_value()[0], "connect");
            if e.get("type").is_some() {
                assert_eq!(w.get("type").unwrap().as_str(), Some("stdio"));
            }
            let restore = UrlRestore {
                key_text: lit(key),
                type_text: Some(ty.to_string()),
            };
            let back = apply(&wrapped, unwrap_http(&wrapped, &w, 1, &restore).unwrap()).unwrap();
            assert_eq!(back, src);
        }
    }

    #[test]
    fn hand_wrapped_entries_unwrap_sensibly() {
        let src = r#"{"args": ["wrap", "--server", "x", "--", "node"], "command": "mcp-warden"}"#;
        let e = entry_of(src);
        let out = apply(src, unwrap_stdio(src, &e, 4).unwrap()).unwrap();
        assert_eq!(out, r#"{"command": "node"}"#);
        let src = "{\"command\": \"mcp-warden\", \"args\": [\"wrap\", \"--\", \"node\"],}";
        let e = entry_of(src);
        let out = apply(src, unwrap_stdio(src, &e, 2).unwrap()).unwrap();
        assert_eq!(out, "{\"command\": \"node\",}");
    }
}
