//! Byte-span splicing: the [`Edit`] type, applying edits, and reading the
//! local formatting style (separators, colons) so inserted text matches
//! its neighbours. Used by [`super::rewrite`].

use super::jsonc::{skip_trivia, Node, Span};

/// Replace `span` of the source with `text` (an insertion when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub span: Span,
    pub text: String,
}

/// A JSON string literal for `s`.
pub fn lit(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

pub(super) fn text(src: &str, span: &Span) -> String {
    src[span.clone()].to_string()
}

fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// The whitespace separating items in a container, so inserted items look
/// like their neighbours: between the first two items if there are two,
/// else the space after the opening bracket when it holds a line break,
/// else `fallback`.
fn item_sep(src: &str, open: usize, starts: &[usize], ends: &[usize], fallback: &str) -> String {
    if starts.len() >= 2 {
        let between = &src[ends[0]..starts[1]];
        if let Some(after) = between.split_once(',').map(|(_, a)| a) {
            if is_blank(after) {
                return after.to_string();
            }
        }
    }
    if let Some(&first) = starts.first() {
        let lead = &src[open + 1..first];
        if is_blank(lead) && lead.contains('\n') {
            return lead.to_string();
        }
    }
    fallback.to_string()
}

/// Fallback separator: none in minified files (recognised by a bare `:`
/// after the key), else one space.
pub(super) fn fallback_sep(colon: &str) -> &'static str {
    if colon == ":" {
        ""
    } else {
        " "
    }
}

pub(super) fn member_sep(src: &str, obj: &Node, fallback: &str) -> String {
    let m = obj.members();
    let starts: Vec<usize> = m.iter().map(|m| m.key_span.start).collect();
    let ends: Vec<usize> = m.iter().map(|m| m.value.span().end).collect();
    item_sep(src, obj.span().start, &starts, &ends, fallback)
}

pub(super) fn array_sep(src: &str, arr: &Node, fallback: &str) -> String {
    let starts: Vec<usize> = arr.items().iter().map(|n| n.span().start).collect();
    let ends: Vec<usize> = arr.items().iter().map(|n| n.span().end).collect();
    item_sep(src, arr.span().start, &starts, &ends, fallback)
}

/// The text between a member's key and its value (`: `, `:` …).
pub(super) fn colon(src: &str, obj: &Node, index: usize) -> String {
    let m = &obj.members()[index];
    text(src, &(m.key_span.end..m.value.span().start))
}

/// Removes member `index` together with one adjacent comma.
pub(super) fn delete_member(src: &str, obj: &Node, index: usize) -> Edit {
    let m = obj.members();
    let span = if index > 0 {
        m[index - 1].value.span().end..m[index].value.span().end
    } else if index + 1 < m.len() {
        m[index].key_span.start..m[index + 1].key_span.start
    } else {
        // Only member: also swallow a JSONC trailing comma.
        let end = m[index].value.span().end;
        let after = skip_trivia(src, end);
        let end = if src[after..].starts_with(',') {
            after + 1
        } else {
            end
        };
        m[index].key_span.start..end
    };
    Edit {
        span,
        text: String::new(),
    }
}

pub(super) fn member<'a>(obj: &'a Node, key: &str) -> Option<(usize, &'a Node)> {
    obj.member_index(key).map(|i| (i, &obj.members()[i].value))
}

/// Applies non-overlapping edits; overlapping ones mean a bug or a
/// pathological file, and are refused rather than guessed at.
pub fn apply(src: &str, mut edits: Vec<Edit>) -> Result<String, String> {
    edits.sort_by_key(|e| (e.span.start, e.span.end));
    let mut out = String::with_capacity(src.len() + 256);
    let mut pos = 0;
    for e in &edits {
        if e.span.start < pos || e.span.end > src.len() {
            return Err("overlapping edits".into());
        }
        out.push_str(&src[pos..e.span.start]);
        out.push_str(&e.text);
        pos = e.span.end;
    }
    out.push_str(&src[pos..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_refuses_overlaps() {
        let edits = vec![
            Edit {
                span: 0..3,
                text: "x".into(),
            },
            Edit {
                span: 2..4,
                text: "y".into(),
            },
        ];
        assert!(apply("abcdef", edits).is_err());
    }
}
