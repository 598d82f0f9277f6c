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

// Patterns are constants covered by tests; a failure here is a programming error.
static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let pats: Vec<&str> = DETECTORS.iter().map(|d| d.1).collect();
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
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(t: &str) -> Vec<&'static str> {
        find_secrets(t).into_iter().map(|h| h.kind).collect()
    }

    #[test]
    fn detects_each_kind() {
        let cases = [
            ("id AKIAIOSFODNN7EXAMPLE here", "aws_access_key_id"),
            ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key"),
            (r#""SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY""#, "aws_secret_access_key"),
            (r#""private_key_id": "0123456789abcdef0123456789abcdef01234567""#, "gcp_private_key_id"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "private_key"),
            (r#""private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n""#, "private_key"),
            ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE (truncated", "private_key"),
            ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----", "pgp_private_key"),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA...\n-----END OPENSSH PRIVATE KEY-----", "ssh_private_key"),
            ("PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\nAAAA\nPrivate-MAC: 0a1b2c", "ssh_private_key"),
            ("key=AIzaSyD-1234567890abcdefghijklmnopqrstu", "gcp_api_key"),
            ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy==;EndpointSuffix=core.windows.net", "azure_connection_string"),
            ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG=", "azure_connection_string"),
            ("https://a.blob.core.windows.net/c?sv=2022-11-02&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789%2B%2F%3D", "azure_sas_token"),
            ("secret: abc8Q~abcdefghijklmnopqrstuvwxyz0123456", "azure_client_secret"),
            ("GITHUB_TOKEN=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "github_token"),
            ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "github_token"),
            ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_token"),
            ("glpat-xxxxxxxxxxxxxxxxxxxx", "gitlab_token"),
            ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"),
            ("xapp-1-A0123456789-0123456789012-abcdef", "slack_token"),
            ("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "slack_webhook"),
            ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
            ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "stripe_webhook_secret"),
            ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345-_abc", "anthropic_api_key"),
            ("OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrSt1234567890", "openai_api_key"),
            ("sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij", "openai_api_key"),
            ("npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "npm_token"),
            ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "huggingface_token"),
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
            ("Authorization: Bearer abcdef0123456789abcdef", "authorization_header"),
            ("postgres://app:s3cr3t@db.internal:5432/prod", "connection_string_password"),
            ("mongodb+srv://u:p%40ss@cluster0.mongodb.net/db", "connection_string_password"),
            ("redis://:hunter22@cache:6379/0", "connection_string_password"),
            ("amqp://guest:guest@rabbit:5672/", "connection_string_password"),
            ("jdbc:postgresql://db:5432/x?user=app&password=s3cr3t", "connection_string_password"),
            ("Server=tcp:db;Database=x;User Id=sa;Password=Pa55word!;", "connection_string_password"),
        ];
        for (text, kind) in cases {
            assert_eq!(kinds(text), vec![kind], "{text}");
        }
    }

    #[test]
    fn ordinary_text_passes() {
        let mut img = String::new();
        let mut x: u32 = 12345;
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            img.push(B64[(x >> 16) as usize % 64] as char);
        }
        let texts = [
            "The quick brown fox jumps over the lazy dog. Use sk-learn for ML; see the task-list.",
            "commit 3f786850e387550fdab836ed7e6dc881de23001b",
            "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "id 123e4567-e89b-12d3-a456-426614174000",
            "https://example.com/path?q=1&page=2 and postgres://db.example.com:5432/app",
            "http://user@host.example/ and mailto:someone@example.com",
            "password: (set in the vault)  the password is required",
            "AKIA is a prefix; AKIAshort",
            "The secret key is stored in the vault.",
            "eyJ is how base64 JSON starts",
            &img,
        ];
        for t in texts {
            assert_eq!(redact(t), None, "{}", &t[..t.len().min(80)]);
        }
    }

    #[test]
    fn redacts_only_the_secret() {
        assert_eq!(
            redact("db: postgres://app:s3cr3t@db:5432/x ok").as_deref(),
            Some("db: postgres://app:[REDACTED:connection_string_password]@db:5432/x ok")
        );
        let t = "k=AKIAIOSFODNN7EXAMPLE\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\nbye";
        assert_eq!(
            redact(t).as_deref(),
            Some("k=[REDACTED:aws_access_key_id]\n[REDACTED:ssh_private_key]\nbye")
        );
    }

    #[test]
    fn json_walker() {
        let mut v = json!({
            "content": [{"type": "text", "text": "token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"}],
            "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8": 1,
            "n": 5, "clean": "nothing here"
        });
        assert_eq!(find_secrets_in_json(&v), vec!["github_token"]);
        assert_eq!(redact_json(&mut v), vec!["github_token"]);
        assert_eq!(v["content"][0]["text"], "token [REDACTED:github_token]");
        assert_eq!(v["[REDACTED:github_token]"], 1);
        assert_eq!(v["clean"], "nothing here");
        let mut clean = json!({"a": ["b", 1, {"c": "d"}]});
        let before = clean.clone();
        assert!(redact_json(&mut clean).is_empty());
        assert_eq!(clean, before);
    }
}
