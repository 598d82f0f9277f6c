//! File plumbing for install/uninstall: timestamped backups and atomic,
//! mode-preserving writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Suffix marker of backup files: `<file>.mcp-warden-backup-<UTC stamp>`.
pub const BACKUP_MARKER: &str = ".mcp-warden-backup-";

/// `YYYYMMDDTHHMMSSZ` for a time (UTC).
pub fn utc_stamp(t: SystemTime) -> String {
    crate::timefmt::compact(t)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Copies `path` to a fresh backup next to it and returns the backup path.
/// Never overwrites an older backup (adds `-1`, `-2`… within one second).
pub fn backup(path: &Path, now: SystemTime) -> std::io::Result<PathBuf> {
    let base = with_suffix(path, &format!("{BACKUP_MARKER}{}", utc_stamp(now)));
    let mut candidate = base.clone();
    let mut n = 1;
    while candidate.exists() {
        candidate = with_suffix(&base, &format!("-{n}"));
        n += 1;
    }
    // fs::copy carries the permission bits over: backups of files holding
    // API keys in `env` stay as private as the original.
    fs::copy(path, &candidate)?;
    Ok(candidate)
}

/// Backups of `path`, newest first (the stamp sorts lexically).
pub fn backups_of(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}{BACKUP_MARKER}", name.to_string_lossy());
    let mut found: Vec<PathBuf> = fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })
    .map(|rd| {
        rd.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect()
    })
    .unwrap_or_default();
    found.sort_by_key(|p| std::cmp::Reverse(backup_sort_key(p)));
    found
}

/// Sort key that puts `…Z-10` after `…Z-9`.
fn backup_sort_key(p: &Path) -> (String, u64) {
    let name = p.to_string_lossy().into_owned();
    match name.rsplit_once("Z-") {
        Some((head, n)) => (head.to_string(), n.parse().unwrap_or(0)),
        None => (name.trim_end_matches('Z').to_string(), 0),
    }
}

/// Writes `contents` to `path` atomically (`fsutil::write_atomic`: same permissions as the
/// file it replaces, fsync, rename). A symlinked config is written through to its target,
/// keeping the link.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    crate::fsutil::write_atomic(&target, contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamps_are_utc_calendar_dates() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29 12:34:56
        assert_eq!(utc_stamp(t), "20240229T123456Z");
    }

    #[test]
    fn backups_never_collide_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.json");
        fs::write(&f, "{}").unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(100);
        let a = backup(&f, t).unwrap();
        let b = backup(&f, t).unwrap();
        let c = backup(&f, t + Duration::from_secs(1)).unwrap();
        assert_ne!(a, b);
        assert_eq!(backups_of(&f), vec![c, b, a]);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_mode_and_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
