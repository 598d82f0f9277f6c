//! `builtin.proxy_state`: a tool argument that names the proxy's own state (state dir, config
//! file, policy dir, pins, keys) is refused whatever the policy says — a tool that can read or
//! write there could approve its own held calls or re-pin a rug-pulled definition.
//!
//! Every string in the arguments is looked at whole and split into shell-like tokens (a command
//! line such as `cat ~/.mcp-warden/approvals/x.json` names the file too). A candidate is an
//! absolute path, `~` or `~/…`, a `file://` URI (percent-decoded), or a relative path with a `/`
//! or a leading `.` (resolved against the working directory the server inherits from `wrap`).
//! It is normalised (`.`, `..`), its longest existing prefix resolved through symlinks, and
//! compared component-wise: `/home/u/.mcp-warden-notes` is not under `/home/u/.mcp-warden`.
//!
//! The only I/O is `canonicalize` of paths that exist on this machine (`wrap` runs beside the
//! server), injected so that tests can stay on the real filesystem or not.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// Strings longer than this are only checked whole (no tokenising): bulk content is rarely a
/// command line, and the cost stays linear anyway.
const TOKENISE_MAX: usize = 64 * 1024;

/// The protected locations and how to read paths.
#[derive(Debug, Clone, Default)]
pub struct ProtectedPaths {
    /// Normalised, and canonical where they exist.
    roots: Vec<PathBuf>,
    home: Option<PathBuf>,
    cwd: Option<PathBuf>,
}

impl ProtectedPaths {
    pub fn new(home: Option<PathBuf>, cwd: Option<PathBuf>) -> ProtectedPaths {
        ProtectedPaths {
            roots: Vec::new(),
            home,
            cwd,
        }
    }

    /// Protect `path` and everything under it. `/` (or an empty path) is ignored: it would
    /// refuse every path on the machine.
    pub fn protect(&mut self, path: &Path) {
        let Some(lexical) = self.absolute(path) else {
            return;
        };
        let forms = [Some(lexical.clone()), resolve(&lexical)];
        for p in forms.into_iter().flatten() {
            if p.components().count() > 1 && !self.roots.contains(&p) {
                self.roots.push(p);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// `Err(reason)` naming the argument (never echoing the value) if one names protected state.
    pub fn check(&self, arguments: &Value) -> Result<(), String> {
        if self.roots.is_empty() {
            return Ok(());
        }
        let mut path = String::new();
        self.walk(arguments, &mut path)
    }

    fn walk(&self, v: &Value, at: &mut String) -> Result<(), String> {
        match v {
            Value::String(s) => {
                if self.names_state(s) {
                    let name = if at.is_empty() { "arguments" } else { at };
                    return Err(format!(
                        "argument {name} names the proxy's own state (state dir, config or policy); no policy can allow that"
                    ));
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("[{i}]"));
                    self.walk(item, at)?;
                    at.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = at.len();
                    if !at.is_empty() {
                        at.push('.');
                    }
                    at.push_str(k);
                    self.walk(item, at)?;
                    at.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// True if `s`, or one of its tokens, is a path under a protected root.
    pub fn names_state(&self, s: &str) -> bool {
        if self.is_protected(s.trim()) {
            return true;
        }
        if s.len() > TOKENISE_MAX {
            return false;
        }
        s.split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '=' | '"' | '\'' | '`' | ';' | '|' | '&' | '<' | '>' | '(' | ')' | ','
                )
        })
        .filter(|t| !t.is_empty() && *t != s.trim())
        .any(|t| self.is_protected(t))
    }

    fn is_protected(&self, candidate: &str) -> bool {
        // Longer than PATH_MAX cannot be opened as a path (and would make resolving costly).
        if candidate.len() > PATH_MAX {
            return false;
        }
        let Some(path) = self.candidate_path(candidate) else {
            return false;
        };
        let Some(raw) = self.joined(&path) else {
            return false;
        };
        let under = |p: &Path| self.roots.iter().any(|r| p.starts_with(r));
        // Lexically, and as the kernel would resolve it: `link/../x` follows `link` first.
        under(&normalise(&raw)) || resolve(&raw).is_some_and(|p| under(&p))
    }

    /// The path a string names, if it looks like one.
    fn candidate_path(&self, s: &str) -> Option<PathBuf> {
        if s.is_empty() || s.contains(['\n', '\0']) {
            return None;
        }
        if s.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("file://"))
        {
            let rest = &s[7..];
            let slash = rest.find('/')?;
            let host = &rest[..slash];
            if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                return None;
            }
            let path = rest[slash..].split(['?', '#']).next().unwrap_or("");
            return Some(PathBuf::from(percent_decode(path)));
        }
        // Other URLs (https://…) name no local file.
        if s.contains("://") {
            return None;
        }
        if s == "~" {
            return self.home.clone();
        }
        if let Some(rest) = s.strip_prefix("~/") {
            return self.home.as_ref().map(|h| h.join(rest));
        }
        if s.starts_with('/') || s.starts_with('.') || s.contains('/') {
            return Some(PathBuf::from(s));
        }
        None
    }

    /// Absolute and lexically normalised (`.` dropped, `..` pops); `None` when relative and no
    /// working directory is known.
    fn absolute(&self, p: &Path) -> Option<PathBuf> {
        self.joined(p).map(|j| normalise(&j))
    }

    /// Absolute, as written (relative paths against the working directory).
    fn joined(&self, p: &Path) -> Option<PathBuf> {
        if p.is_absolute() {
            Some(p.to_owned())
        } else {
            Some(self.cwd.as_ref()?.join(p))
        }
    }
}

const PATH_MAX: usize = 4096;

/// `.` dropped, `..` pops, repeated separators gone.
fn normalise(joined: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The path with its longest existing prefix resolved by the kernel (symlinks and `..` in the
/// order it would follow them), the rest appended lexically; `None` when nothing of it exists
/// beyond `/`.
fn resolve(raw: &Path) -> Option<PathBuf> {
    let parts: Vec<Component<'_>> = raw.components().collect();
    for k in (2..=parts.len()).rev() {
        let prefix: PathBuf = parts[..k].iter().collect();
        if let Ok(mut out) = prefix.canonicalize() {
            for c in &parts[k..] {
                match c {
                    Component::Normal(n) => out.push(n),
                    Component::ParentDir => {
                        out.pop();
                    }
                    _ => {}
                }
            }
            return Some(out);
        }
    }
    None
}

/// `%XX` decoded; a malformed escape is kept as it is (it then names no real file).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |x: u8| (x as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn setup() -> (tempfile::TempDir, ProtectedPaths, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap();
        let state = home.join(".mcp-warden");
        std::fs::create_dir_all(state.join("approvals")).unwrap();
        std::fs::create_dir_all(home.join("work")).unwrap();
        std::os::unix::fs::symlink(&state, home.join("work/link")).unwrap();
        std::os::unix::fs::symlink(state.join("approvals"), home.join("work/alink")).unwrap();
        let mut p = ProtectedPaths::new(Some(home.clone()), Some(home.join("work")));
        p.protect(&state);
        p.protect(&home.join("etc/proxy.toml"));
        (dir, p, home)
    }

    #[test]
    fn every_spelling_of_the_state_dir_is_refused() {
        let (_d, p, home) = setup();
        let h = home.display();
        for s in [
            format!("{h}/.mcp-warden/approvals/abc.json"),
            format!("{h}/.mcp-warden"),
            format!("{h}/work/../.mcp-warden/pins/x.json"),
            format!("{h}//.mcp-warden/./pins"),
            "~/.mcp-warden/pins/fs.json".into(),
            "../.mcp-warden/approvals".into(),
            "link/approvals/new.json".into(),
            // The kernel follows `link` (→ the state dir) before `..`: lexically this is
            // `work/pins`, really it is the state dir's `pins`.
            format!("{h}/work/link/approvals/../pins/x.json"),
            format!("{h}/work/alink/../pins/x.json"),
            format!("{h}/work/link/../.mcp-warden/approvals"),
            format!("file://{h}/.mcp-warden/approvals/a.json"),
            format!("FILE://localhost{h}/%2Emcp-warden/pins"),
            format!("cat {h}/.mcp-warden/approvals/a.json | sh"),
            format!("--config={h}/etc/proxy.toml"),
        ] {
            assert!(
                p.check(&json!({"a": {"b": [s.clone()]}})).is_err(),
                "{s} passed"
            );
        }
        let e = p.check(&json!({"path": "~/.mcp-warden"})).unwrap_err();
        assert!(
            e.contains("argument path") && !e.contains(".mcp-warden"),
            "{e}"
        );
    }

    #[test]
    fn benign_paths_pass() {
        let (_d, p, home) = setup();
        let h = home.display();
        for s in [
            format!("{h}/.mcp-warden-notes/todo.md"),
            format!("{h}/work/report.txt"),
            "~/.mcp-warden-notes".into(),
            "notes.txt".into(),
            "hello world, see the docs".into(),
            format!("file://{h}/work/a.txt"),
            "https://example.com/.mcp-warden/approvals".into(),
            "/".into(),
            format!("{h}/etc/proxy.toml.bak"),
            "fourth\u{202e}".into(),
            "ü/\u{202e}é".into(),
            "日本語のテキスト".into(),
            "a/".repeat(3000),
            (0..3000)
                .map(|i| format!("src/a{i}/b.rs "))
                .collect::<String>(),
        ] {
            assert!(p.check(&json!({ "x": s.clone() })).is_ok(), "{s} refused");
        }
        assert!(ProtectedPaths::default()
            .check(&json!({"p": "/anything"}))
            .is_ok());
    }
}
