//! Where a path really leads on this machine: the longest prefix that exists, canonicalised
//! (every symlink followed, as the server's `open` would), with the rest re-appended. Only
//! called on paths that already passed the lexical checks (absolute, no `..`), so the
//! re-appended rest cannot climb back out.

use std::path::{Path, PathBuf};

/// `path` with its longest existing prefix resolved; unchanged when nothing of it exists (or
/// it cannot be read: the lexical verdict stands).
pub fn resolve_existing(path: &str) -> PathBuf {
    let path = Path::new(path);
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let mut prefix = Some(path);
    while let Some(p) = prefix {
        if let Ok(real) = std::fs::canonicalize(p) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        if let Some(name) = p.file_name() {
            rest.push(name);
        }
        prefix = p.parent();
    }
    path.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_in_the_existing_prefix_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        let p = root.join("link/new/file.txt");
        assert_eq!(
            resolve_existing(p.to_str().unwrap()),
            root.join("real/new/file.txt")
        );
        assert_eq!(
            resolve_existing("/nonexistent-root-xyz/a"),
            PathBuf::from("/nonexistent-root-xyz/a")
        );
    }
}
