//! A loaded policy directory and tool-policy resolution.
//!
//! Which files apply: a file applies to a server when one of its
//! `[server] match` globs matches the server's configured name or its whole
//! command line (argv joined with spaces), e.g. `*server-filesystem*`.
//!
//! Which tool rule wins, among all matching rules of all applicable files:
//! 1. an exact name (no wildcard) beats any glob;
//! 2. more literal characters beat fewer (`write_*` beats `*`);
//! 3. on a tie, the later rule in load order wins — files are loaded in
//!    byte order of their names, so a local `zz-overrides.toml` overrides a
//!    shipped pack.
//!
//! The winning rule is taken whole (no field-by-field merging of rules, so
//! what applies is always one readable rule). Fields it leaves unset come from
//! the `[server]` sections of the applicable files (later file wins per
//! field), then from these defaults:
//! - risk: tool annotations — `destructiveHint: true` → high, else
//!   `readOnlyHint: true` → low — else the server's `default_risk`, else
//!   medium. Annotations are server-supplied hints (a server can lie), so they
//!   only fill gaps: any `risk` a policy gives the tool itself wins;
//! - action: allow; `critical` risk turns allow into approve (never deny
//!   into approve);
//! - min_trust and rate: none (the caller applies the configured risk
//!   thresholds, SPEC §7).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::checks::arg_rules::ArgRule;
use crate::checks::glob::{glob_match, is_literal, specificity};
use crate::checks::path_rule::validate_root;
use crate::policy::file::{Action, PolicyError, PolicyFile, Rate, Risk, ToolRule};

/// The server a call goes to, as configured by the operator.
#[derive(Debug, Clone, Copy)]
pub struct ServerRef<'a> {
    pub name: &'a str,
    /// The server's command line (`["npx", "-y", "@…/server-filesystem", "/data"]`);
    /// empty for URL servers.
    pub argv: &'a [String],
}

/// Everything the decision needs about one tool, resolved once per call.
#[derive(Debug, Clone)]
pub struct ToolPolicy {
    pub tool: String,
    pub risk: Risk,
    pub action: Action,
    /// `None`: use the configured threshold for `risk`.
    pub min_trust: Option<f64>,
    pub rate: Option<Rate>,
    /// Argument rules, sorted by argument name, `$SERVER_ARGS` substituted.
    pub args: Vec<(String, ArgRule)>,
    pub deny_other_args: bool,
    /// `remember = "session"`: an approval may be remembered for the rest of the session.
    pub remember: bool,
    /// Where the policy came from, for errors and audit:
    /// `filesystem.toml:tool[write_file]`, `filesystem.toml:server`, or
    /// `default` when no file applies.
    pub rule_name: String,
}

impl ToolPolicy {
    /// Trust a server needs for this tool: `min_trust` if the policy set one,
    /// else the configured threshold for the risk (critical uses `high`).
    pub fn required_trust(&self, low: f64, medium: f64, high: f64) -> f64 {
        self.min_trust.unwrap_or(match self.risk {
            Risk::Low => low,
            Risk::Medium => medium,
            Risk::High | Risk::Critical => high,
        })
    }
}

/// All policy files of a directory, immutable once loaded.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    files: Vec<PolicyFile>,
    version: String,
    dir: Option<PathBuf>,
    /// Which of `files` are built-in packs (the rest came from `dir`).
    builtin: Vec<String>,
}

impl PolicySet {
    /// No policy at all: every tool gets annotation defaults and `allow`.
    pub fn empty() -> PolicySet {
        PolicySet::from_files(Vec::new(), &[])
    }

    /// Load every `*.toml` in `dir` (not recursive; dot-files such as editor
    /// lock files skipped), in byte order of file names. Any bad file fails
    /// the whole load: a half-applied policy is worse than the previous one.
    pub fn load_dir(dir: &Path) -> Result<PolicySet, PolicyError> {
        let mut files = Vec::new();
        let mut texts = Vec::new();
        for path in policy_paths(dir)? {
            let (file, text) = PolicyFile::load(&path)?;
            texts.push((file.name.clone(), text));
            files.push(file);
        }
        let mut set = PolicySet::from_files(files, &texts);
        set.dir = Some(dir.to_owned());
        Ok(set)
    }

    /// The built-in packs (when `builtin`) and then every file of `dir` (when it exists): a
    /// directory file named like a pack replaces it, the others add to them and, loading
    /// later, win ties.
    pub fn load_layered(dir: &Path, builtin: bool) -> Result<PolicySet, PolicyError> {
        let paths = if dir.is_dir() {
            policy_paths(dir)?
        } else {
            Vec::new()
        };
        let local: Vec<String> = paths
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        let mut files = Vec::new();
        let mut texts = Vec::new();
        let mut packs = Vec::new();
        if builtin {
            for (name, text) in crate::policy::builtin::BUILTIN_PACKS {
                if local.iter().any(|l| l == name) {
                    continue;
                }
                files.push(PolicyFile::parse(Path::new(name), text)?);
                texts.push((format!("builtin:{name}"), text.to_string()));
                packs.push(name.to_string());
            }
        }
        for path in paths {
            let (file, text) = PolicyFile::load(&path)?;
            texts.push((file.name.clone(), text));
            files.push(file);
        }
        let mut set = PolicySet::from_files(files, &texts);
        set.dir = dir.is_dir().then(|| dir.to_owned());
        set.builtin = packs;
        Ok(set)
    }

    /// What is in force, one line each: `built-in everything.toml`, `/etc/…/local.toml`.
    pub fn sources(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|f| {
                if self.builtin.contains(&f.name) {
                    format!("built-in {}", f.name)
                } else {
                    match &self.dir {
                        Some(d) => d.join(&f.name).display().to_string(),
                        None => f.name.clone(),
                    }
                }
            })
            .collect()
    }

    /// Parse in-memory sources `(file name, text)`; for tests and `check-config`.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<PolicySet, PolicyError> {
        let mut files = Vec::new();
        let mut texts = Vec::new();
        for (name, text) in sources {
            files.push(PolicyFile::parse(Path::new(name), text)?);
            texts.push((name.to_string(), text.to_string()));
        }
        Ok(PolicySet::from_files(files, &texts))
    }

    fn from_files(files: Vec<PolicyFile>, texts: &[(String, String)]) -> PolicySet {
        PolicySet {
            files,
            version: content_version(texts),
            dir: None,
            builtin: Vec::new(),
        }
    }

    /// Hex SHA-256 over the file names and contents: the same text loads as
    /// the same version, which audit records carry (OPS-01).
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Names of the loaded files, in load order.
    pub fn file_names(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.name.as_str()).collect()
    }

    /// Names of the files that apply to `server`.
    pub fn files_for(&self, server: &ServerRef<'_>) -> Vec<&str> {
        let line = server.argv.join(" ");
        self.files
            .iter()
            .filter(|f| applies(f, server.name, &line))
            .map(|f| f.name.as_str())
            .collect()
    }

    /// `true` when the tool is denied outright and so must be hidden from
    /// `tools/list` (calls are still refused on every `tools/call`).
    pub fn is_hidden(
        &self,
        server: &ServerRef<'_>,
        tool: &str,
        annotations: Option<&Value>,
    ) -> bool {
        self.resolve(server, tool, annotations).action == Action::Deny
    }

    /// The policy for one tool of one server. `annotations` is the tool's
    /// `annotations` object from the server's (pinned) `tools/list`.
    pub fn resolve(
        &self,
        server: &ServerRef<'_>,
        tool: &str,
        annotations: Option<&Value>,
    ) -> ToolPolicy {
        let line = server.argv.join(" ");
        let applicable: Vec<&PolicyFile> = self
            .files
            .iter()
            .filter(|f| applies(f, server.name, &line))
            .collect();

        // Best rule: max by (exact, literal characters, load order).
        let mut best: Option<((bool, usize, usize), &PolicyFile, &ToolRule)> = None;
        let mut order = 0usize;
        for f in &applicable {
            for rule in &f.tool {
                order += 1;
                let pat = rule.name.get_ref();
                if !glob_match(pat, tool) {
                    continue;
                }
                let key = (is_literal(pat), specificity(pat), order);
                if best.as_ref().is_none_or(|(k, _, _)| key > *k) {
                    best = Some((key, f, rule));
                }
            }
        }

        // Server-level fields: later applicable file wins per field.
        let mut default_risk = None;
        let mut server_action = None;
        let mut server_trust = None;
        let mut server_rate = None;
        for f in &applicable {
            let s = &f.server;
            default_risk = s.default_risk.or(default_risk);
            server_action = s.action.or(server_action);
            server_trust = s.min_trust.map(|t| t.0).or(server_trust);
            server_rate = s.rate.or(server_rate);
        }

        let rule = best.as_ref().map(|(_, _, r)| *r);
        let risk = rule
            .and_then(|r| r.risk)
            .or_else(|| annotation_risk(annotations))
            .or(default_risk)
            .unwrap_or(Risk::Medium);
        let mut action = rule
            .and_then(|r| r.action)
            .or(server_action)
            .unwrap_or(Action::Allow);
        if risk == Risk::Critical && action == Action::Allow {
            action = Action::Approve;
        }
        let rule_name = match (&best, applicable.last()) {
            (Some((_, f, r)), _) => format!("{}:tool[{}]", f.name, r.name.get_ref()),
            (None, Some(f)) => format!("{}:server", f.name),
            (None, None) => "default".to_string(),
        };
        let args = match &best {
            Some((_, f, r)) => materialise_args(f, r, server.argv),
            None => Vec::new(),
        };
        ToolPolicy {
            tool: tool.to_string(),
            risk,
            action,
            min_trust: rule.and_then(|r| r.min_trust).map(|t| t.0).or(server_trust),
            rate: rule.and_then(|r| r.rate).or(server_rate),
            args,
            deny_other_args: rule.is_some_and(|r| r.deny_other_args),
            remember: rule.and_then(|r| r.remember) == Some(super::file::Remember::Session),
            rule_name,
        }
    }
}

impl PolicySet {
    /// Every `path_under` root any tool rule of `server` has (`$SERVER_ARGS` substituted): the
    /// places its files may be named, which `resources/read` of a `file:` URI is held to too.
    /// `None` when no rule of the server names paths.
    pub fn path_roots(&self, server: &ServerRef<'_>) -> Option<Vec<String>> {
        let line = server.argv.join(" ");
        let mut roots: Option<Vec<String>> = None;
        for f in self.files.iter().filter(|f| applies(f, server.name, &line)) {
            for r in &f.tool {
                for (_, rule) in materialise_args(f, r, server.argv) {
                    if let Some(p) = rule.path_under {
                        roots.get_or_insert_with(Vec::new).extend(p);
                    }
                }
            }
        }
        roots.map(|mut r| {
            r.sort();
            r.dedup();
            r
        })
    }
}

fn applies(f: &PolicyFile, name: &str, command_line: &str) -> bool {
    f.server
        .matches
        .get_ref()
        .iter()
        .any(|p| glob_match(p, name) || (!command_line.is_empty() && glob_match(p, command_line)))
}

/// Risk suggested by MCP tool annotations. Pessimistic when both are set.
fn annotation_risk(annotations: Option<&Value>) -> Option<Risk> {
    let a = annotations?;
    let hint = |k: &str| a.get(k).and_then(Value::as_bool) == Some(true);
    if hint("destructiveHint") {
        Some(Risk::High)
    } else if hint("readOnlyHint") {
        Some(Risk::Low)
    } else {
        None
    }
}

/// Clone the rule's argument rules, replacing `$SERVER_ARGS` with the
/// server's root directories. With no usable root the rule keeps an empty
/// root list, which refuses every path (fail closed).
fn materialise_args(f: &PolicyFile, r: &ToolRule, argv: &[String]) -> Vec<(String, ArgRule)> {
    r.args
        .iter()
        .map(|(name, spec)| {
            let mut rule = spec.rule.clone();
            if spec.server_args_roots {
                let mut roots = rule.path_under.take().unwrap_or_default();
                roots.extend(server_arg_roots(f.server.matches.get_ref(), argv));
                rule.path_under = Some(roots);
            }
            (name.clone(), rule)
        })
        .collect()
}

/// The directories a server was started with: the argv elements after the
/// first element that one of the file's command globs matches by itself
/// (`@modelcontextprotocol/server-filesystem`, `/opt/…/server-filesystem/index.js`),
/// or after argv[0] when none does. Only absolute, clean paths count
/// (`validate_root`); relative or `~` directories resolve against state we
/// cannot see, so they grant nothing.
pub fn server_arg_roots(globs: &[String], argv: &[String]) -> Vec<String> {
    let start = argv
        .iter()
        .position(|a| globs.iter().any(|g| !is_literal(g) && glob_match(g, a)))
        .map_or(1, |i| i + 1);
    argv.iter()
        .skip(start)
        .filter(|a| validate_root(a).is_ok())
        .map(|a| {
            let t = a.trim_end_matches('/');
            if t.is_empty() { "/" } else { t }.to_string()
        })
        .collect()
}

/// `*.toml` files directly in `dir`, sorted by name.
pub fn policy_paths(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let err = |reason: String| PolicyError {
        file: dir.to_owned(),
        line: None,
        key: String::new(),
        reason,
    };
    let entries =
        std::fs::read_dir(dir).map_err(|e| err(format!("cannot read policy directory: {e}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| err(format!("cannot read policy directory: {e}")))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        paths.push(entry.path());
    }
    paths.sort();
    Ok(paths)
}

/// Version of a set of `(file name, text)`: unambiguous framing (lengths),
/// so moving text between files changes the version.
pub fn content_version(texts: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (name, text) in texts {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
