//! Comparing a live listing with the pin: per item Unchanged / Changed / New, plus the pinned
//! items the listing no longer has, and a readable diff of two definitions (JSON pointer paths
//! with old → new values) for alerts and `pins diff`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::pins::file::{digest, Kind, Section};

/// One difference between two definitions. `None` means absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// JSON pointer (RFC 6901) into the definition; "" is the whole value.
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemDrift {
    Unchanged,
    Changed { changes: Vec<Change> },
    New,
}

/// One usable item of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveItem {
    /// Position in the listing, so the caller can filter the array it got.
    pub index: usize,
    pub key: String,
    pub sha256: String,
    pub drift: ItemDrift,
}

/// An item we cannot pin and so never expose: no key, listed twice, or not canonicalizable.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub index: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Comparison {
    pub items: Vec<LiveItem>,
    /// Pinned keys the listing does not contain, sorted.
    pub removed: Vec<String>,
    pub invalid: Vec<Invalid>,
}

/// Compares one listing (the items of `tools`, `resourceTemplates` or `prompts`) with the pinned
/// section. `pinned = None` means this kind was never pinned: everything is New.
pub fn compare(kind: Kind, pinned: Option<&Section>, listing: &[Value]) -> Comparison {
    let mut out = Comparison::default();
    // A key listed twice is ambiguous (which one would the client call?): neither copy is usable.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for item in listing {
        if let Some(key) = kind.key_of(item) {
            *seen.entry(key).or_default() += 1;
        }
    }
    for (index, item) in listing.iter().enumerate() {
        let Some(key) = kind.key_of(item) else {
            out.invalid.push(Invalid {
                index,
                reason: format!(
                    "a {} without a string \"{}\"",
                    kind.label(),
                    kind.key_field()
                ),
            });
            continue;
        };
        if seen.get(key).copied().unwrap_or(0) > 1 {
            out.invalid.push(Invalid {
                index,
                reason: format!("{} {key:?} is listed more than once", kind.label()),
            });
            continue;
        }
        let sha256 = match digest(item) {
            Ok(d) => d,
            Err(e) => {
                out.invalid.push(Invalid {
                    index,
                    reason: format!("{} {key:?}: {e}", kind.label()),
                });
                continue;
            }
        };
        let drift = match pinned.and_then(|s| s.get(key)) {
            None => ItemDrift::New,
            Some(p) if p.sha256 == sha256 => ItemDrift::Unchanged,
            Some(p) => ItemDrift::Changed {
                changes: diff(&p.definition, item),
            },
        };
        out.items.push(LiveItem {
            index,
            key: key.to_string(),
            sha256,
            drift,
        });
    }
    let listed: BTreeSet<&str> = seen.keys().copied().collect();
    out.removed = pinned
        .into_iter()
        .flat_map(|s| s.keys())
        .filter(|k| !listed.contains(k.as_str()))
        .cloned()
        .collect();
    out
}

/// Every path where `old` and `new` differ, depth first, object keys in sorted order.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff_into(String::new(), old, new, &mut out);
    out
}

fn diff_into(path: String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_into(child, x, y, out),
                    (x, y) => out.push(Change {
                        path: child,
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let child = format!("{path}/{i}");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => diff_into(child, x, y, out),
                    (x, y) => out.push(Change {
                        path: child,
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
            }
        }
        // Compared as JSON numbers, not text: 10 and 1e1 are the same (JCS agrees).
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        _ if old == new => {}
        _ => out.push(Change {
            path,
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

/// True when every change is inside `inputSchema` / `outputSchema` (CAP-04: schema poisoning
/// with an unchanged description, audited as `capability.schema_drift`).
pub fn schema_only(changes: &[Change]) -> bool {
    !changes.is_empty()
        && changes.iter().all(|c| {
            ["/inputSchema", "/outputSchema"].iter().any(|p| {
                c.path == *p
                    || c.path
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        })
}

/// One line per change: `  /description: "old" → "new"`.
pub fn render(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        out.push_str(&format!(
            "  {}: {} → {}\n",
            if c.path.is_empty() { "/" } else { &c.path },
            shown(c.old.as_ref()),
            shown(c.new.as_ref())
        ));
    }
    out
}

const SHOWN_MAX_CHARS: usize = 400;

/// Compact JSON (which already escapes control characters such as ANSI ESC), with invisible
/// format characters (bidi overrides, zero-width, tag characters) escaped too, so a terminal shows
/// an operator what the model would read; truncated so one huge value cannot flood the screen.
fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "(absent)".to_string();
    };
    let text = value.to_string();
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == SHOWN_MAX_CHARS {
            out.push('…');
            break;
        }
        if invisible(c) {
            out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn invisible(c: char) -> bool {
    matches!(u32::from(c),
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::file::Pinned;
    use serde_json::json;

    fn section(defs: &[Value]) -> Section {
        defs.iter()
            .map(|d| {
                (
                    Kind::Tool.key_of(d).unwrap().to_string(),
                    Pinned::new(d.clone()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn classifies_each_item() {
        let a = json!({"name": "a", "description": "A"});
        let b = json!({"name": "b", "description": "B"});
        let gone = json!({"name": "gone"});
        let pinned = section(&[a.clone(), b, gone]);
        let listing = vec![
            a,
            json!({"name": "b", "description": "B!"}),
            json!({"name": "c"}),
            json!({"description": "no name"}),
            json!({"name": "d"}),
            json!({"name": "d", "x": 1}),
        ];
        let cmp = compare(Kind::Tool, Some(&pinned), &listing);
        let drift: Vec<_> = cmp
            .items
            .iter()
            .map(|i| (i.index, i.key.as_str(), &i.drift))
            .collect();
        assert_eq!(drift[0], (0, "a", &ItemDrift::Unchanged));
        assert!(matches!(drift[1], (1, "b", ItemDrift::Changed { .. })));
        assert_eq!(drift[2], (2, "c", &ItemDrift::New));
        assert_eq!(drift.len(), 3);
        assert_eq!(cmp.removed, vec!["gone"]);
        let bad: Vec<usize> = cmp.invalid.iter().map(|i| i.index).collect();
        assert_eq!(bad, vec![3, 4, 5]);
        // Never pinned: everything is new, nothing removed.
        let fresh = compare(Kind::Tool, None, &listing[..1]);
        assert_eq!(fresh.items[0].drift, ItemDrift::New);
    }

    #[test]
    fn diff_lists_paths_with_old_and_new() {
        let old = json!({"name": "add", "description": "Adds.", "inputSchema": {"type": "object",
            "properties": {"a": {"type": "number"}}, "required": ["a"]}});
        let new = json!({"name": "add", "description": "Adds.", "inputSchema": {"type": "object",
            "properties": {"a": {"type": "number"}, "x/y": {"type": "string"}},
            "required": ["a", "x/y"]}});
        let changes = diff(&old, &new);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["/inputSchema/properties/x~1y", "/inputSchema/required/1"]
        );
        assert!(schema_only(&changes));
        let text = render(&changes);
        assert!(text.contains("/inputSchema/properties/x~1y: (absent) → {\"type\":\"string\"}"));
        assert!(text.contains("/inputSchema/required/1: (absent) → \"x/y\""));

        let desc = diff(
            &json!({"description": "a"}),
            &json!({"description": "b", "inputSchemaX": 1}),
        );
        assert!(!schema_only(&desc));
        assert!(diff(&json!({"n": 10}), &json!({"n": 10.0})).is_empty());
        assert_eq!(diff(&json!(1), &json!("1"))[0].path, "");
    }

    #[test]
    fn rendering_shows_hidden_characters() {
        let changes = diff(
            &json!({"description": "ok"}),
            &json!({"description": "ok\u{202E}evil\u{E0041}\u{1b}[2J"}),
        );
        let text = render(&changes);
        assert!(text.contains("\\u{202E}"), "{text}");
        assert!(text.contains("\\u{E0041}"), "{text}");
        assert!(text.contains("\\u001b"), "{text}");
        assert!(!text.contains('\u{202E}') && !text.contains('\u{1b}'));
        let long = render(&diff(&json!("a"), &json!("b".repeat(5000))));
        assert!(long.chars().count() < 1000);
    }
}
