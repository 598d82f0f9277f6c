//! Per-argument rules from policy files (`[tool.args.NAME]`), SPEC §6.
//!
//! An `ArgRule` is deserialised once when a policy loads (regexes compiled and
//! roots validated then, so a bad rule is a config error with file and line,
//! never a request-time failure) and checked on every call.
//!
//! Value semantics: a string is checked directly; an array is checked element
//! by element (every element must be a string when any string rule is set);
//! any other JSON type where a string rule applies is a violation (fail
//! closed: `{"path": {"$ref": …}}` must not slip past `path_under`).

use std::fmt;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::checks::{net_rule, path_rule};

/// Why an argument was refused. `rule` names the rule (`"pattern"`,
/// `"path_under"`, …); the caller prefixes tool and argument names.
/// `reason` says what to change and never echoes the argument value (values
/// are not logged by default, SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgViolation {
    pub rule: &'static str,
    pub reason: String,
}

impl fmt::Display for ArgViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.reason)
    }
}

impl std::error::Error for ArgViolation {}

/// A regex that must match the whole value (`^(?:…)$` is added).
#[derive(Debug, Clone)]
pub struct FullMatch {
    source: String,
    re: Regex,
}

impl FullMatch {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let re = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            // Policy authors are trusted, but a typo should not cost 100 MB.
            .size_limit(1 << 20)
            .build()?;
        Ok(FullMatch {
            source: source.to_string(),
            re,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

impl<'de> Deserialize<'de> for FullMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FullMatch::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid pattern: {e}")))
    }
}

/// Argument constraints for one tool argument.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawArgRule")]
pub struct ArgRule {
    pub path_under: Option<Vec<String>>,
    pub pattern: Option<FullMatch>,
    /// Maximum length in characters (Unicode scalar values).
    pub max_len: Option<usize>,
    /// Allowed values; compared as JSON values (strings, numbers, booleans).
    pub one_of: Option<Vec<Value>>,
    pub no_leading_dash: bool,
    pub url_hosts: Option<Vec<String>>,
    pub deny_private_addresses: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArgRule {
    path_under: Option<Vec<String>>,
    pattern: Option<FullMatch>,
    max_len: Option<usize>,
    one_of: Option<Vec<Value>>,
    #[serde(default)]
    no_leading_dash: bool,
    url_hosts: Option<Vec<String>>,
    #[serde(default)]
    deny_private_addresses: bool,
}

impl TryFrom<RawArgRule> for ArgRule {
    type Error = String;

    fn try_from(r: RawArgRule) -> Result<Self, String> {
        if let Some(roots) = &r.path_under {
            if roots.is_empty() {
                return Err("path_under needs at least one root".into());
            }
            for root in roots {
                path_rule::validate_root(root)
                    .map_err(|e| format!("path_under root {root:?} is not usable: {e}"))?;
            }
        }
        if r.url_hosts
            .as_ref()
            .is_some_and(|h| h.is_empty() || h.iter().any(String::is_empty))
        {
            return Err("url_hosts needs at least one non-empty host pattern".into());
        }
        if r.one_of.as_ref().is_some_and(Vec::is_empty) {
            return Err("one_of needs at least one value".into());
        }
        Ok(ArgRule {
            path_under: r.path_under,
            pattern: r.pattern,
            max_len: r.max_len,
            one_of: r.one_of,
            no_leading_dash: r.no_leading_dash,
            url_hosts: r.url_hosts,
            deny_private_addresses: r.deny_private_addresses,
        })
    }
}

impl ArgRule {
    /// Rules that only make sense for strings.
    fn has_string_rule(&self) -> bool {
        self.path_under.is_some()
            || self.pattern.is_some()
            || self.max_len.is_some()
            || self.no_leading_dash
            || self.url_hosts.is_some()
            || self.deny_private_addresses
    }

    /// Check one argument value against every rule that is set.
    pub fn check(&self, value: &Value) -> Result<(), ArgViolation> {
        match value {
            Value::String(s) => self.check_str(s),
            Value::Array(items) if self.has_string_rule() || self.one_of.is_some() => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => self.check_str(s),
                        other => self.check_non_string(other),
                    }
                    .map_err(|mut v| {
                        v.reason = format!("element {i}: {}", v.reason);
                        v
                    })?;
                }
                Ok(())
            }
            other => self.check_non_string(other),
        }
    }

    fn check_non_string(&self, value: &Value) -> Result<(), ArgViolation> {
        if self.has_string_rule() {
            return Err(ArgViolation {
                rule: "type",
                reason: format!("expected a string, got {}", type_name(value)),
            });
        }
        self.check_one_of(value)
    }

    fn check_one_of(&self, value: &Value) -> Result<(), ArgViolation> {
        let Some(allowed) = &self.one_of else {
            return Ok(());
        };
        if allowed.iter().any(|a| json_eq(a, value)) {
            return Ok(());
        }
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        Err(ArgViolation {
            rule: "one_of",
            reason: format!("value must be one of [{}]", list.join(", ")),
        })
    }

    fn check_str(&self, s: &str) -> Result<(), ArgViolation> {
        // Cheapest first; max_len also bounds the work of the later rules.
        if let Some(max) = self.max_len {
            // Count at most max+1 chars: no full scan of a huge value.
            if s.chars().nth(max).is_some() {
                return Err(ArgViolation {
                    rule: "max_len",
                    reason: format!("value is longer than {max} characters"),
                });
            }
        }
        if self.one_of.is_some() {
            self.check_one_of(&Value::String(s.to_string()))?;
        }
        if let Some(p) = &self.pattern {
            if !p.is_match(s) {
                return Err(ArgViolation {
                    rule: "pattern",
                    reason: format!("value does not match the required pattern {}", p.as_str()),
                });
            }
        }
        if self.no_leading_dash && starts_with_dash(s) {
            return Err(ArgViolation {
                rule: "no_leading_dash",
                reason: "value starts with '-' and could be read as a command-line option; \
                         pass it after '--' or remove the dash"
                    .into(),
            });
        }
        if let Some(roots) = &self.path_under {
            path_rule::path_under(s, roots)?;
        }
        if let Some(hosts) = &self.url_hosts {
            net_rule::url_hosts(s, hosts)?;
        }
        if self.deny_private_addresses {
            net_rule::deny_private_addresses(s)?;
        }
        Ok(())
    }
}

/// Leading whitespace is skipped because some servers trim before building
/// argv; Unicode dashes count because some tools normalise them.
fn starts_with_dash(s: &str) -> bool {
    matches!(
        s.trim_start().chars().next(),
        Some('-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe63}' | '\u{ff0d}')
    )
}

/// Equality where numbers compare by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(j: Value) -> ArgRule {
        serde_json::from_value(j).unwrap()
    }

    #[test]
    fn deserialises_and_rejects_unknown_fields() {
        let r = rule(json!({"pattern": "[a-z]+", "max_len": 5, "no_leading_dash": true}));
        assert!(r.pattern.is_some() && r.no_leading_dash && !r.deny_private_addresses);
        assert!(serde_json::from_value::<ArgRule>(json!({"patern": "x"})).is_err());
        assert!(serde_json::from_value::<ArgRule>(json!({"pattern": "("})).is_err());
        assert!(serde_json::from_value::<ArgRule>(json!({"path_under": []})).is_err());
        assert!(serde_json::from_value::<ArgRule>(json!({"path_under": ["rel"]})).is_err());
        assert!(serde_json::from_value::<ArgRule>(json!({"url_hosts": [""]})).is_err());
        assert!(ArgRule::default().check(&json!({"any": 1})).is_ok());
    }

    #[test]
    fn pattern_is_anchored() {
        let r = rule(json!({"pattern": "[A-Za-z0-9._/-]{1,100}"}));
        assert!(r.check(&json!("main")).is_ok());
        let e = r.check(&json!("main; rm -rf /")).unwrap_err();
        assert_eq!(e.rule, "pattern");
        let r = rule(json!({"pattern": "a|b"}));
        assert!(
            r.check(&json!("ab")).is_err(),
            "alternation must not escape the anchors"
        );
    }

    #[test]
    fn leading_dash_refused() {
        let r = rule(json!({"no_leading_dash": true}));
        assert!(r.check(&json!("main")).is_ok());
        assert!(r.check(&json!("feature-x")).is_ok());
        for s in ["--upload-pack=touch /tmp/pwned", " -x", "\u{2014}x", "-"] {
            assert_eq!(
                r.check(&json!(s)).unwrap_err().rule,
                "no_leading_dash",
                "{s}"
            );
        }
    }

    #[test]
    fn max_len_and_one_of() {
        let r = rule(json!({"max_len": 3}));
        assert!(r.check(&json!("abc")).is_ok());
        assert!(r.check(&json!("ééé")).is_ok(), "characters, not bytes");
        assert_eq!(r.check(&json!("abcd")).unwrap_err().rule, "max_len");
        let r = rule(json!({"one_of": ["asc", "desc", 1]}));
        assert!(r.check(&json!("asc")).is_ok());
        assert!(r.check(&json!(1.0)).is_ok());
        assert!(r.check(&json!(["asc", "desc"])).is_ok());
        let e = r.check(&json!("drop")).unwrap_err();
        assert_eq!(e.rule, "one_of");
        assert!(e.reason.contains("\"asc\""));
    }

    #[test]
    fn non_strings_fail_closed() {
        let r = rule(json!({"path_under": ["/data"]}));
        for v in [
            json!(1),
            json!(null),
            json!({"p": "/data/x"}),
            json!(["/data/x", 3]),
        ] {
            assert!(r.check(&v).is_err(), "{v}");
        }
        assert!(r.check(&json!(["/data/a", "/data/b"])).is_ok());
        let e = r.check(&json!(["/data/a", "/etc/passwd"])).unwrap_err();
        assert!(e.reason.starts_with("element 1:"));
    }

    #[test]
    fn delegates_to_path_and_net_rules() {
        let r = rule(json!({"url_hosts": ["*.example.com"], "deny_private_addresses": true}));
        assert!(r.check(&json!("https://a.example.com/x")).is_ok());
        assert_eq!(
            r.check(&json!("https://evil.io/")).unwrap_err().rule,
            "url_hosts"
        );
        let r = rule(json!({"deny_private_addresses": true}));
        assert_eq!(
            r.check(&json!("http://127.1/")).unwrap_err().rule,
            "deny_private_addresses"
        );
        let r = rule(json!({"path_under": ["/data"]}));
        assert_eq!(
            r.check(&json!("/data/../etc")).unwrap_err().rule,
            "path_under"
        );
        assert!(r.check(&json!("/data/ok")).is_ok());
        let v = ArgViolation {
            rule: "x",
            reason: "y".into(),
        };
        assert_eq!(v.to_string(), "x: y");
    }
}
