//! The policy file format (`policies/*.toml`, SPEC §6 and §12) and its parser.
//!
//! Everything is validated while deserialising (enums, rates, trust values,
//! regexes and path roots inside `ArgRule`), with `deny_unknown_fields`
//! everywhere, so a typo is a load error naming file, line and key — never a
//! silently ignored rule. A file that loads cannot fail at request time.
//!
//! ```toml
//! [server]
//! match = ["filesystem", "*server-filesystem*"]  # server names or command-line globs
//! default_risk = "medium"                        # optional: low | medium | high | critical
//! min_trust = 0.0                                # optional, 0..=1
//! rate = "60/min"                                # optional default for each tool
//! action = "allow"                               # optional default: allow | deny | approve
//! [[tool]]
//! name = "read_*"                                # glob
//! risk = "low"
//! deny_other_args = false                        # true: arguments without a rule are refused
//! remember = "never"                             # "session": an approval may cover the session
//! [tool.args.path]
//! path_under = ["$SERVER_ARGS", "/srv/shared"]   # see `SERVER_ARGS`
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::checks::arg_rules::ArgRule;

/// Placeholder inside `path_under`: "the absolute directories on the server's
/// own command line". The filesystem server's real roots are its arguments, so
/// a shipped pack cannot name them; resolution substitutes them per server.
pub const SERVER_ARGS: &str = "$SERVER_ARGS";

/// Policy files larger than this are refused (a policy is hand-written text).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    Approve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Approve => "approve",
        }
    }
}

/// Whether an approval may be remembered (`remember = "session" | "never"`, default never):
/// "session" lets the human approve the same tool with the same argument names for the rest of
/// the session in one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Remember {
    Session,
    #[default]
    Never,
}

/// A rate limit: `count` calls per `per`, written `"10/min"`, `"5/s"`,
/// `"100/hour"`, `"1000/day"`. Bursts of up to `count` are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub fn parse(s: &str) -> Result<Rate, String> {
        let bad = || format!("rate {s:?} must look like \"10/min\" (units: s, min, hour, day)");
        let (n, unit) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!(
                "rate {s:?} allows nothing; use action = \"deny\" instead"
            ));
        }
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(bad()),
        };
        Ok(Rate {
            count,
            per: Duration::from_secs(secs),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "hour",
            _ => "day",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rate::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A minimum trust score in `0.0..=1.0` (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trust(pub f64);

impl<'de> Deserialize<'de> for Trust {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&v) {
            Ok(Trust(v))
        } else {
            Err(serde::de::Error::custom(
                "min_trust must be between 0 and 1",
            ))
        }
    }
}

/// One `[tool.args.NAME]` table: an `ArgRule` plus whether its `path_under`
/// listed [`SERVER_ARGS`] (removed before `ArgRule` validates the roots, since
/// the placeholder is not an absolute path).
#[derive(Debug, Clone)]
pub struct ArgSpec {
    pub rule: ArgRule,
    pub server_args_roots: bool,
}

impl<'de> Deserialize<'de> for ArgSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let mut server_args_roots = false;
        if let Some(toml::Value::Array(roots)) = table.get_mut("path_under") {
            let before = roots.len();
            roots.retain(|r| r.as_str() != Some(SERVER_ARGS));
            server_args_roots = roots.len() != before;
            if let Some(other) = roots
                .iter()
                .filter_map(toml::Value::as_str)
                .find(|r| r.starts_with('$'))
            {
                return Err(D::Error::custom(format!(
                    "path_under: unknown placeholder {other:?} (only {SERVER_ARGS} exists)"
                )));
            }
            if roots.is_empty() {
                table.remove("path_under");
            }
        }
        // Deserialise the rest as the shared `ArgRule`; its errors get the
        // offending key prefixed, since the span here is the whole table.
        let rule: ArgRule =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let msg = e.inner().message().to_string();
                if key.is_empty() || key == "." {
                    D::Error::custom(msg)
                } else {
                    D::Error::custom(format!("{key}: {msg}"))
                }
            })?;
        Ok(ArgSpec {
            rule,
            server_args_roots,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Server names (as configured) or globs over the server's command line.
    #[serde(rename = "match")]
    pub matches: Spanned<Vec<String>>,
    pub default_risk: Option<Risk>,
    pub min_trust: Option<Trust>,
    pub rate: Option<Rate>,
    pub action: Option<Action>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// Tool name glob (`write_file`, `read_*`).
    pub name: Spanned<String>,
    pub risk: Option<Risk>,
    pub action: Option<Action>,
    pub min_trust: Option<Trust>,
    pub rate: Option<Rate>,
    /// May a human's approval of this tool be remembered for the session?
    pub remember: Option<Remember>,
    /// Refuse arguments that have no `[tool.args.NAME]` table (POL-07's
    /// `additionalProperties: false`).
    #[serde(default)]
    pub deny_other_args: bool,
    #[serde(default)]
    pub args: BTreeMap<String, ArgSpec>,
}

/// One parsed policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub server: ServerSection,
    #[serde(default)]
    pub tool: Vec<ToolRule>,
    /// File name (`filesystem.toml`), used in rule names; set after parsing.
    #[serde(skip)]
    pub name: String,
}

/// A policy load error: where and why. Displays as `path:line: key: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Key path inside the file (`tool[1].args.path.pattern`), may be empty.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for PolicyError {}

impl PolicyFile {
    /// Read and parse one file (size-capped).
    pub fn load(path: &Path) -> Result<(PolicyFile, String), PolicyError> {
        let err = |reason: String| PolicyError {
            file: path.to_owned(),
            line: None,
            key: String::new(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(err(format!("file is larger than {MAX_FILE_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let file = PolicyFile::parse(path, &text)?;
        Ok((file, text))
    }

    /// Parse `text`; `path` names the file in errors and rule names.
    pub fn parse(path: &Path, text: &str) -> Result<PolicyFile, PolicyError> {
        let at = |span: Option<std::ops::Range<usize>>, key: String, reason: String| PolicyError {
            file: path.to_owned(),
            line: span.map(|s| line_of(text, s.start)),
            key,
            reason,
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| at(e.span(), String::new(), e.message().to_owned()))?;
        let mut file: PolicyFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            at(e.inner().span(), key, e.inner().message().to_owned())
        })?;
        file.name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        file.validate()
            .map_err(|(span, key, reason)| at(Some(span), key, reason))?;
        Ok(file)
    }

    /// Checks that span several fields (serde cannot see them).
    fn validate(&self) -> Result<(), (std::ops::Range<usize>, String, String)> {
        let m = &self.server.matches;
        if m.get_ref().is_empty() || m.get_ref().iter().any(String::is_empty) {
            return Err((
                m.span(),
                "server.match".into(),
                "needs at least one non-empty server name or command glob".into(),
            ));
        }
        for (i, t) in self.tool.iter().enumerate() {
            if t.name.get_ref().is_empty() {
                return Err((t.name.span(), format!("tool[{i}].name"), "is empty".into()));
            }
            // Two rules with the same pattern in one file: the second would
            // silently shadow the first, which is never what the author meant.
            if let Some(j) = self.tool[..i].iter().position(|o| o.name == t.name) {
                return Err((
                    t.name.span(),
                    format!("tool[{i}].name"),
                    format!("duplicate rule for {:?} (also tool[{j}])", t.name.get_ref()),
                ));
            }
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
