//! What install/uninstall did (or would do), per file, and the shared
//! "verify, back up, write" step both of them end with.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use super::diff::unified;
use super::fsio::{backup, write_atomic};
use super::jsonc::parse;
use super::load::Loaded;
use super::locations::{Client, Location};
use super::servers::{classify, entries};
use super::ClientError;

/// Result of one run over all config files.
#[derive(Debug, Clone, Default)]
pub struct InstallReport {
    pub dry_run: bool,
    pub files: Vec<FileReport>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written (a backup was made first).
    Changed,
    /// Dry run: would be written; see `diff`.
    WouldChange,
    /// Nothing to do (already in the wanted state, or no servers).
    Unchanged,
    /// Not valid JSON/JSONC, or our edit failed its own check: untouched.
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub client: Client,
    pub path: PathBuf,
    pub outcome: Outcome,
    /// Servers (config keys) rewritten in this file.
    pub servers: Vec<String>,
    /// Per-server remarks: skipped entries, headers not forwarded, …
    pub notes: Vec<String>,
    pub backup: Option<PathBuf>,
    /// Unified diff, for dry runs.
    pub diff: Option<String>,
}

impl FileReport {
    pub fn new(loc: &Location, outcome: Outcome) -> FileReport {
        FileReport {
            client: loc.client,
            path: loc.path.clone(),
            outcome,
            servers: Vec::new(),
            notes: Vec::new(),
            backup: None,
            diff: None,
        }
    }
}

impl InstallReport {
    /// Files written (or, in a dry run, that would be).
    pub fn changed_files(&self) -> usize {
        self.files
            .iter()
            .filter(|f| matches!(f.outcome, Outcome::Changed | Outcome::WouldChange))
            .count()
    }

    pub fn invalid_files(&self) -> usize {
        self.files
            .iter()
            .filter(|f| matches!(f.outcome, Outcome::Invalid(_)))
            .count()
    }
}

impl fmt::Display for InstallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.files.is_empty() {
            return writeln!(f, "no MCP client config files found");
        }
        for r in &self.files {
            let what = match &r.outcome {
                Outcome::Changed => "updated".to_string(),
                Outcome::WouldChange => "would update".to_string(),
                Outcome::Unchanged => "unchanged".to_string(),
                Outcome::Invalid(msg) => format!("skipped: {msg}"),
            };
            writeln!(f, "{} ({}): {what}", r.path.display(), r.client)?;
            if !r.servers.is_empty() {
                writeln!(f, "  servers: {}", r.servers.join(", "))?;
            }
            if let Some(b) = &r.backup {
                writeln!(f, "  backup: {}", b.display())?;
            }
            for n in &r.notes {
                writeln!(f, "  note: {n}")?;
            }
            if let Some(d) = &r.diff {
                write!(f, "{d}")?;
            }
        }
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        Ok(())
    }
}

/// Checks `new_text`, then writes it (backup first) or, in a dry run,
/// records the diff. `want_wrapped` is the state every rewritten server
/// must be in afterwards; a failed check leaves the file untouched.
pub(super) fn finish(
    loc: &Location,
    old: &Loaded,
    new_text: String,
    mut report: FileReport,
    want_wrapped: bool,
    dry_run: bool,
) -> Result<FileReport, ClientError> {
    let check = parse(&new_text, loc.dialect)
        .map_err(|e| e.to_string())
        .and_then(|root| {
            let before = entries(&old.root, loc.layout).len();
            let after = entries(&root, loc.layout);
            let bad = after
                .iter()
                .filter(|e| report.servers.contains(&e.name))
                .find(|e| classify(e.node).is_wrapped() != want_wrapped);
            match bad {
                _ if after.len() != before => Err("server count changed".to_string()),
                Some(e) => Err(format!("server '{}' not rewritten as expected", e.name)),
                None => Ok(()),
            }
        });
    if let Err(why) = check {
        report.outcome = Outcome::Invalid(format!(
            "internal rewrite check failed ({why}); left untouched"
        ));
        report.servers.clear();
        return Ok(report);
    }
    if dry_run {
        report.diff = Some(unified(&loc.path.to_string_lossy(), &old.text, &new_text));
        report.outcome = Outcome::WouldChange;
        return Ok(report);
    }
    let io = |source| ClientError::Io {
        path: loc.path.clone(),
        source,
    };
    report.backup = Some(backup(&loc.path, SystemTime::now()).map_err(io)?);
    write_atomic(&loc.path, new_text.as_bytes()).map_err(io)?;
    report.outcome = Outcome::Changed;
    Ok(report)
}
