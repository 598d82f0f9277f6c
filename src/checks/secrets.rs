//! Secret detection and redaction (SPEC §6: results are redacted as
//! `[REDACTED:<kind>]`, secrets in outgoing arguments are refused).
//!
//! Detectors are token formats with a fixed prefix or a keyword context, never
//! bare entropy: git SHAs, sha256 digests, UUIDs and base64 images must pass.
//! A `RegexSet` runs first (one pass over the text); only the detectors it
//! reports are re-run to find positions. Where a detector has a capture group,
//! only that group (the secret itself) is redacted, so `AccountName=…` or the
//! host of a connection string stays readable.

use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde_json::Value;

/// One detected secret: its kind and byte range in the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHit {
    pub kind: &'static str,
    pub range: Range<usize>,
}

/// (kind, pattern, needs_digit): `needs_digit` rejects generic-looking matches
/// that contain no digit (`sk-learn-is-a-library…`). Specific kinds come before
/// generic ones: on an exact tie the earlier detector names the hit.
const DETECTORS: &[(&str, &str, bool)] = &[
    (
        "private_key",
        r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\.:,-]*)",
        false,
    ),
    (
        "ssh_private_key",
        r"PuTTY-User-Key-File-\d+: [\s\S]*?Private-MAC: [0-9a-fA-F]+",
        false,
    ),
    (
        "aws_access_key_id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b",
        false,
    ),
    (
        "aws_secret_access_key",
        r#"(?i)(?:aws_?)?secret_?(?:access_?)?key(?:_?id)?["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        false,
    ),
    (
        "gcp_private_key_id",
        r#""private_key_id"\s*:\s*"([0-9a-f]{40})""#,
        false,
    ),
    ("gcp_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b", false),
    ("google_oauth_token", r"\bya29\.[0-9A-Za-z_-]{20,}", false),
    (
        "azure_connection_string",
        r"(?i)\b(?:AccountKey|SharedAccessKey|SharedSecretValue)\s*=\s*([A-Za-z0-9+/]{20,}={0,2})",
        false,
    ),
    (
        "azure_sas_token",
        r"[?&;]sig=([A-Za-z0-9%+/]{30,}(?:%3[Dd]|=){0,2})",
        false,
    ),
    (
        "azure_client_secret",
        r"\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}\b",
        false,
    ),
    ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b", false),
    (
        "github_token",
        r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
        false,
    ),
    (
        "gitlab_token",
        r"\bgl(?:pat|dt|rt|ptt|cbt|imt|soat|agent)-[A-Za-z0-9_-]{20,}",
        false,
    ),
    ("slack_token", r"\bxox[abposre]-[A-Za-z0-9-]{10,}", true),
    ("slack_token", r"\bxapp-\d-[A-Za-z0-9-]{10,}", false),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,}",
        false,
    ),
    (
        "stripe_key",
        r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}\b",
        false,
    ),
    (
        "stripe_webhook_secret",
        r"\bwhsec_[A-Za-z0-9+/=]{20,}",
        false,
    ),
    (
        "anthropic_api_key",
        r"\bsk-ant-[a-z]{2,10}\d{0,3}-[A-Za-z0-9_-]{20,}",
        false,
    ),
    (
        "openai_api_key",
        r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}",
        true,
    ),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b", false),
    ("pypi_token", r"\bpypi-AgE[A-Za-z0-9_-]{50,}", false),
    ("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}\b", true),
    (
        "sendgrid_api_key",
        r"\bSG\.[A-Za-z0-9_-]{20,24}\.[A-Za-z0-9_-]{39,50}\b",
        false,
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        false,
    ),
    (
        "authorization_header",
        r"(?i)\bauthorization\b[\x22']?\s*[:=]\s*[\x22']?(?:bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{16,})",
        false,
    ),
    (
        "connection_string_password",
        r"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@'\x22<>]*:([^\s@/'\x22<>]+)@[^\s/@'\x22<>]",
        false,
    ),
    (
        "connection_string_password",
        r"(?i)[?&](?:password|passwd|pwd)=([^&\s'\x22#]+)",
        false,
    ),
    (
        "connection_string_password",
        r"(?i)(?:^|[;\s\x22'])(?:password|pwd)\s*=\s*([^;'\x22\s]{3,})",
        false,
    ),
];

struct Compiled {
    set: RegexSet,
    each: Vec<Regex>,
}

/// Rewrite `\b` as an ASCII word boundary. A Unicode `\b` makes the regex
/// crate leave its fast DFA on non-ASCII input (measured: seconds for a few
/// hundred KB of CJK or tag characters); every token here is ASCII anyway.
pub(crate) fn ascii_word_boundaries(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)")
}

// Patterns are constants covered by tests; a failure here is a programming error.
static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let pats: Vec<String> = DETECTORS
        .iter()
        .map(|d| ascii_word_boundaries(d.1))
        .collect();
    Compiled {
        set: RegexSet::new(&pats).expect("secret detector set compiles"),
        each: pats
            .iter()
            .map(|p| Regex::new(p).expect("secret detector compiles"))
            .collect(),
    }
});

/// Every secret in `text`, ordered by position, non-overlapping.
pub fn find_secrets(text: &str) -> Vec<SecretHit> {
    let c = &*COMPILED;
    let mut hits = Vec::new();
    for i in c.set.matches(text).iter() {
        let (kind, _, needs_digit) = DETECTORS[i];
        for caps in c.each[i].captures_iter(text) {
            let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                continue;
            };
            if needs_digit && !m.as_str().bytes().any(|b| b.is_ascii_digit()) {
                continue;
            }
            if kind == "connection_string_password" && code_or_placeholder(m.as_str()) {
                continue;
            }
            let kind = refine_kind(kind, m.as_str());
            hits.push((
                i,
                SecretHit {
                    kind,
                    range: m.range(),
                },
            ));
        }
    }
    // Earliest start wins, then the longest, then the more specific detector.
    hits.sort_by(|(ia, a), (ib, b)| {
        (a.range.start, std::cmp::Reverse(a.range.end), ia).cmp(&(
            b.range.start,
            std::cmp::Reverse(b.range.end),
            ib,
        ))
    });
    let mut out: Vec<SecretHit> = Vec::with_capacity(hits.len());
    for (_, h) in hits {
        if out
            .last()
            .is_none_or(|last| h.range.start >= last.range.end)
        {
            out.push(h);
        }
    }
    out
}

/// A `password=` / `pwd =` / `user:…@` value that is source code or a placeholder, not a
/// secret: `None`, `password` (passed on), `os.getcwd()`, `getpass.getpass(…)`,
/// `os.environ[…]`, `self.password`, `process.env.DB_PASSWORD`, `${DB_PASSWORD}`,
/// `<your-password>`. Code read or written by an agent is full of these. The price: a real
/// password that is a dotted word path without digits (`my.secret.pass`) is not redacted.
fn code_or_placeholder(value: &str) -> bool {
    let v = value.trim_end_matches([')', ',', ':', ';', '}', ']', '?']);
    if v.starts_with(['$', '<', '%']) || v.starts_with("{{") {
        return true;
    }
    const KEYWORDS: &[&str] = &[
        "None",
        "null",
        "nil",
        "true",
        "false",
        "True",
        "False",
        "undefined",
        "NULL",
        "nullptr",
    ];
    if KEYWORDS.contains(&v)
        || ["password", "passwd", "pwd"]
            .iter()
            .any(|k| v.eq_ignore_ascii_case(k))
    {
        return true;
    }
    if !v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return false;
    }
    let end = v
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':')))
        .unwrap_or(v.len());
    let (path, rest) = v.split_at(end);
    // A call or a subscript: `os.getcwd()`, `std::env::current_dir()?`, `os.environ["X"]`.
    if rest.starts_with(['(', '[']) {
        return true;
    }
    // A member path: `self.password`, `process.env.DB_PASSWORD`.
    rest.is_empty()
        && path.contains('.')
        && !path.bytes().any(|b| b.is_ascii_digit())
        && path
            .split('.')
            .all(|seg| seg.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

/// Name PEM blocks by their header so the audit says what leaked.
fn refine_kind(kind: &'static str, matched: &str) -> &'static str {
    if kind != "private_key" {
        return kind;
    }
    if matched.starts_with("-----BEGIN OPENSSH") {
        "ssh_private_key"
    } else if matched.starts_with("-----BEGIN PGP") {
        "pgp_private_key"
    } else {
        kind
    }
}

/// `text` with every secret replaced by `[REDACTED:<kind>]`, or `None` when
/// nothing was found (the caller then forwards the original bytes).
pub fn redact(text: &str) -> Option<String> {
    let hits = find_secrets(text);
    if hits.is_empty() {
        return None;
    }
    Some(apply(text, &hits))
}

fn apply(text: &str, hits: &[SecretHit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for h in hits {
        out.push_str(&text[at..h.range.start]);
        out.push_str("[REDACTED:");
        out.push_str(h.kind);
        out.push(']');
        at = h.range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Kinds of secret found anywhere in `value` (strings and object keys),
/// without changing it: outgoing arguments carrying one are refused.
pub fn find_secrets_in_json(value: &Value) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => add_kinds(&mut kinds, &find_secrets(s)),
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(m) => {
                for (k, v) in m {
                    add_kinds(&mut kinds, &find_secrets(k));
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    kinds
}

/// Redact every string (and object key) in `value` in place. Returns the kinds
/// found, each once; empty means `value` is untouched and the original bytes
/// can be forwarded. Iterative, so nesting depth cannot overflow the stack.
pub fn redact_json(value: &mut Value) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                let hits = find_secrets(s);
                if !hits.is_empty() {
                    add_kinds(&mut kinds, &hits);
                    *s = apply(s, &hits);
                }
            }
            Value::Array(a) => stack.extend(a.iter_mut()),
            Value::Object(m) => {
                if m.keys().any(|k| !find_secrets(k).is_empty()) {
                    // Rebuild to rename keys while keeping their order.
                    let old = std::mem::take(m);
                    for (k, val) in old {
                        let hits = find_secrets(&k);
                        add_kinds(&mut kinds, &hits);
                        let key = if hits.is_empty() { k } else { apply(&k, &hits) };
                        m.insert(key, val);
                    }
                }
                stack.extend(m.values_mut());
            }
            _ => {}
        }
    }
    kinds
}

fn add_kinds(kinds: &mut Vec<&'static str>, hits: &[SecretHit]) {
    for h in hits {
        if !kinds.contains(&h.kind) {
            kinds.push(h.kind);
        }
    }
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
