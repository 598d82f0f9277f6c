//! `path_under`: an argument must name a path inside one of the allowed roots.
//!
//! The check is lexical and component-wise (no I/O): the value is validated,
//! split on `/`, and its components compared with each root's components. A
//! string `starts_with` would accept `/data-evil` for root `/data`
//! (CVE-2025-53110); component comparison cannot.
//!
//! Anything a downstream layer could *reinterpret* is refused rather than
//! normalised, because we cannot know which decoding the server applies:
//! `..` components, percent-encoded separators and dots (once or twice
//! encoded), backslashes, drive letters, UNC/device prefixes, `:` (Windows
//! alternate data streams), `~` (home expansion), NUL and other controls,
//! invisible/bidi characters and Unicode look-alikes of `.` `/` `\` `:` `~`.
//! Relative paths are refused: their meaning depends on the server's cwd.
//!
//! Symlinks inside a root that point outside it cannot be seen lexically, so
//! a path that passes is then resolved as the server would open it: `wrap`
//! runs beside the server, so the longest existing prefix is canonicalised
//! (symlinks followed) and the rest re-appended, and the result must still be
//! under a (likewise resolved) root. This is the one part of the check that
//! does I/O (`resolve.rs`); a path that does not exist here is judged lexically.
//!
//! Roots are absolute POSIX paths (`/data`). `file://` URIs (`file:///data/x`,
//! `file://localhost/data/x`) are accepted and checked as their path.

#[path = "path_resolve.rs"]
mod resolve;

use crate::checks::arg_rules::ArgViolation;
use crate::checks::unicode_hazards::{classify, is_path_lookalike};

const RULE: &str = "path_under";

/// `Ok(())` when `value` is a clean absolute path (or `file://` URI) equal to
/// or below one of `roots`.
pub fn path_under(value: &str, roots: &[String]) -> Result<(), ArgViolation> {
    let decoded;
    let path = match strip_file_scheme(value)? {
        Some(uri_path) => {
            decoded = percent_decode_uri_path(uri_path)?;
            decoded.as_str()
        }
        None => {
            refuse_encoded(value)?;
            value
        }
    };
    let comps = components(path)?;
    if !under_any(&comps, roots.iter().map(String::as_str)) {
        return Err(violation(format!(
            "path is outside the allowed roots [{}]; use a path below one of them",
            roots.join(", ")
        )));
    }
    // Lexically inside: now where it really leads on this machine.
    let resolved = resolve::resolve_existing(path);
    let Some(resolved) = resolved.to_str().filter(|r| *r != path) else {
        return Ok(());
    };
    let Ok(resolved_comps) = components(resolved) else {
        return Err(violation(
            "path resolves (through a symlink) to a name that is not a clean path".into(),
        ));
    };
    let real_roots: Vec<String> = roots
        .iter()
        .filter_map(|r| resolve::resolve_existing(r).to_str().map(str::to_owned))
        .collect();
    if under_any(
        &resolved_comps,
        roots.iter().chain(&real_roots).map(String::as_str),
    ) {
        return Ok(());
    }
    Err(violation(format!(
        "path resolves through a symlink to {resolved:?}, outside the allowed roots [{}]; use a path whose real location is below one of them",
        roots.join(", ")
    )))
}

/// Whether `comps` equals or lies below one of `roots`, component by component.
fn under_any<'a>(comps: &[&str], roots: impl Iterator<Item = &'a str>) -> bool {
    for root in roots {
        // Roots come from operator config; a malformed root matches nothing
        // (config validation reports it via `validate_root`).
        let Ok(root_comps) = components(root) else {
            continue;
        };
        if comps.len() >= root_comps.len() && comps.iter().zip(&root_comps).all(|(a, b)| a == b) {
            return true;
        }
    }
    false
}

/// Config-time check of a root: it must itself pass the path checks.
pub fn validate_root(root: &str) -> Result<(), String> {
    components(root).map(|_| ()).map_err(|v| v.reason)
}

fn violation(reason: String) -> ArgViolation {
    ArgViolation { rule: RULE, reason }
}

/// Validate `path` and return its components (empty and `.` dropped).
fn components(path: &str) -> Result<Vec<&str>, ArgViolation> {
    if path.is_empty() {
        return Err(violation("path is empty".into()));
    }
    for c in path.chars() {
        let what = match c {
            '\0' => "a NUL byte",
            '\\' => "a backslash (Windows separator)",
            ':' => "':' (Windows drive or alternate data stream)",
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                "a control character or line break"
            }
            c if classify(c).is_some() => "an invisible or bidirectional character",
            c if is_path_lookalike(c) => "a Unicode look-alike of '.', '/', '\\', ':' or '~'",
            _ => continue,
        };
        return Err(violation(format!(
            "path contains {what}; send a plain absolute POSIX path"
        )));
    }
    if path.starts_with('~') {
        return Err(violation(
            "path starts with '~' (home-directory expansion); send an absolute path".into(),
        ));
    }
    if !path.starts_with('/') {
        return Err(violation(
            "path is relative; send an absolute path under an allowed root".into(),
        ));
    }
    if path.starts_with("//") {
        return Err(violation(
            "path starts with '//' (UNC or implementation-defined root)".into(),
        ));
    }
    let mut out = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        // `..`, `...`, and Windows-trimmed forms like `.. ` or `. .` all climb
        // (or may climb) a directory somewhere.
        if comp.starts_with("..") || comp.trim_end_matches(['.', ' ']).is_empty() {
            return Err(violation(
                "path contains a '..' component; send the resolved absolute path".into(),
            ));
        }
        if comp.starts_with('~') {
            return Err(violation(
                "path component starts with '~' (home-directory expansion)".into(),
            ));
        }
        out.push(comp);
    }
    Ok(out)
}

/// `Some(path)` for a `file:` URI (after the authority), `None` for a plain path.
fn strip_file_scheme(value: &str) -> Result<Option<&str>, ArgViolation> {
    let Some(prefix) = value.get(..5) else {
        return Ok(None);
    };
    if !prefix.eq_ignore_ascii_case("file:") {
        return Ok(None);
    }
    let Some(rest) = value[5..].strip_prefix("//") else {
        return Err(violation(
            "file URI must have the form file:///absolute/path".into(),
        ));
    };
    let slash = rest.find('/').unwrap_or(rest.len());
    let host = &rest[..slash];
    if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
        return Err(violation(
            "file URI names a remote host; only local paths are allowed".into(),
        ));
    }
    let path = &rest[slash..];
    if path.contains(['?', '#']) {
        return Err(violation(
            "file URI has a query or fragment; send a plain path".into(),
        ));
    }
    Ok(Some(path))
}

/// Percent-escapes that decode to path syntax, `%` (double encoding), controls
/// or non-ASCII bytes (overlong UTF-8 such as `%c0%ae`) are refused in plain
/// paths and URIs alike; IIS-style `%u002e` too. Returns the decoded byte of
/// the first dangerous escape.
fn refuse_encoded(s: &str) -> Result<(), ArgViolation> {
    let b = s.as_bytes();
    for i in 0..b.len() {
        if b[i] != b'%' {
            continue;
        }
        if matches!(b.get(i + 1), Some(b'u') | Some(b'U'))
            && b.len() >= i + 6
            && b[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit)
        {
            return Err(encoded_violation());
        }
        if let Some(byte) = hex_pair(b, i + 1) {
            if matches!(byte, b'.' | b'/' | b'\\' | b'%' | b':' | b'~')
                || !(0x20..0x7F).contains(&byte)
            {
                return Err(encoded_violation());
            }
        }
    }
    Ok(())
}

fn encoded_violation() -> ArgViolation {
    violation(
        "path contains a percent-encoded '.', '/', '\\', ':', '~', '%' or control byte; \
         send the path unencoded"
            .into(),
    )
}

fn hex_pair(b: &[u8], i: usize) -> Option<u8> {
    let h = |c: u8| (c as char).to_digit(16);
    let hi = h(*b.get(i)?)?;
    let lo = h(*b.get(i + 1)?)?;
    Some((hi * 16 + lo) as u8)
}

/// Decode a `file:` URI path once. Dangerous escapes are refused first, so the
/// decoded text cannot gain separators or `..` that the raw text did not show.
fn percent_decode_uri_path(path: &str) -> Result<String, ArgViolation> {
    refuse_encoded(path)?;
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let byte = hex_pair(b, i + 1)
                .ok_or_else(|| violation("file URI has a malformed percent-escape".into()))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| violation("file URI path is not valid UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Vec<String> {
        vec!["/workspace/project".to_string(), "/data".to_string()]
    }

    fn ok(p: &str) -> bool {
        path_under(p, &roots()).is_ok()
    }

    #[test]
    fn inside_roots_pass() {
        for p in [
            "/workspace/project",
            "/workspace/project/",
            "/workspace/project/src/main.rs",
            "/workspace//project/./a.txt",
            "/data/a b/ü.txt",
            "/data/100%.txt",
            "/data/a%20b",
            "/data/file~",
            "/data/.hidden",
            "/data/a..b",
            "/data/a.. b",
            "file:///data/x.txt",
            "file://localhost/data/a%20b.txt",
        ] {
            assert!(ok(p), "{p} should pass");
        }
        assert!(path_under("/anything", &["/".to_string()]).is_ok());
    }

    #[test]
    fn sibling_prefix_and_outside_refused() {
        for p in [
            "/workspace/project_secrets/id_rsa",
            "/workspace/project-evil",
            "/data-evil/x",
            "/datax",
            "/workspace",
            "/etc/passwd",
            "file:///etc/shadow",
        ] {
            let e = path_under(p, &roots()).unwrap_err();
            assert_eq!(e.rule, "path_under");
            assert!(e.reason.contains("outside"), "{p}: {}", e.reason);
        }
    }

    #[test]
    fn traversal_and_tricks_refused() {
        for p in [
            "/workspace/project/../../../etc/passwd",
            "/workspace/project/..",
            "/workspace/project/...",
            "/workspace/project/.. /x",
            "/workspace/project/..;/x",
            "/workspace/project/%2e%2e/%2e%2e/etc/passwd",
            "/workspace/project/..%2f..%2fetc/passwd",
            "/workspace/project/%252e%252e/etc",
            "/workspace/project/%c0%ae%c0%ae/etc",
            "/workspace/project/%u002e%u002e/etc",
            "/workspace/project/a%5c..%5cb",
            "/workspace/project/a.txt\0/../../../etc/passwd",
            "C:\\workspace\\project\\..\\..\\Windows\\win.ini",
            "\\\\?\\C:\\Windows\\win.ini",
            "C:/workspace/project/a",
            "//server/share/x",
            "/workspace/project/README.md:hidden_stream",
            "~/.ssh/id_rsa",
            "~root/x",
            "/workspace/project/~/x",
            "/workspace/project/\u{202e}exe.txt",
            "/workspace/project/a\u{200b}b",
            "/workspace/project/\u{ff0e}\u{ff0e}/etc",
            "/workspace/project/\u{2024}\u{2024}/etc",
            "/workspace/project\u{ff0f}..",
            "/workspace/project/a\u{e0041}",
            "/workspace/project/a\nb",
            "/workspace/project/a\u{85}b",
            "/workspace/project/a\u{2028}b",
            "/workspace/project/a\tb",
            "workspace/project/a",
            "./a",
            "",
            "file:///workspace/project/%2e%2e/x",
            "file://evil.example/workspace/project/x",
            "file:/workspace/project/x",
            "file:///workspace/project/x?y",
            "file:///workspace/project/%zz",
        ] {
            assert!(!ok(p), "{p:?} should be refused");
        }
    }

    #[test]
    fn reasons_do_not_echo_the_value() {
        let e = path_under("/workspace/project/../secret-name", &roots()).unwrap_err();
        assert!(!e.reason.contains("secret-name"));
        assert!(e.reason.contains(".."));
    }

    #[test]
    fn roots_are_normalised_and_validated() {
        assert!(path_under("/data/x", &["/data/".to_string()]).is_ok());
        assert!(path_under("/data/x", &["relative".to_string()]).is_err());
        assert!(validate_root("/data").is_ok());
        assert!(validate_root("/data/../etc").is_err());
        assert!(path_under("/data/x", &[]).is_err());
    }

    #[test]
    fn a_symlink_inside_a_root_pointing_outside_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret"), "x").unwrap();
        std::fs::write(root.join("sub/ok.txt"), "x").unwrap();
        std::os::unix::fs::symlink(base.join("outside"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("sub"), root.join("inner")).unwrap();
        let roots = [root.to_str().unwrap().to_owned()];
        let p = |rel: &str| format!("{}/{rel}", root.display());
        let v = path_under(&p("escape/secret"), &roots).unwrap_err();
        assert!(
            v.reason.contains("outside the allowed roots"),
            "{}",
            v.reason
        );
        assert!(path_under(&p("escape/not-yet-created"), &roots).is_err());
        assert!(path_under(&format!("file://{}", p("escape/secret")), &roots).is_err());
        // Benign: a real file, a file to be created, a symlink that stays inside.
        assert_eq!(path_under(&p("sub/ok.txt"), &roots), Ok(()));
        assert_eq!(path_under(&p("sub/new.txt"), &roots), Ok(()));
        assert_eq!(path_under(&p("inner/ok.txt"), &roots), Ok(()));
        // A root that is itself reached through a symlink still works.
        std::os::unix::fs::symlink(&root, base.join("alias")).unwrap();
        let alias = [base.join("alias").to_str().unwrap().to_owned()];
        assert_eq!(
            path_under(&format!("{}/alias/sub/ok.txt", base.display()), &alias),
            Ok(())
        );
    }
}
