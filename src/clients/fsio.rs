//! File plumbing for install/uninstall: timestamped backups and atomic,
//! mode-preserving writes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Suffix marker of backup files: `<file>.mcp-warden-backup-<UTC stamp>`.
pub const BACKUP_MARKER: &str = ".mcp-warden-backup-";

/// `YYYYMMDDTHHMMSSZ` for a time (UTC), without pulling in a date crate.
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-since-epoch → (year, month, day) algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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

/// Writes `contents` to `path` atomically: temp file in the same directory,
/// fsync, same permissions as the file it replaces, rename over it.
/// A symlinked config is written through to its target, keeping the link.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.mcp-warden-tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        if let Ok(meta) = fs::metadata(&target) {
            f.set_permissions(meta.permissions())?;
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &target)?;
        // Make the rename itself durable; not possible on every platform,
        // and the data is already safe, so failures here are ignored.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
