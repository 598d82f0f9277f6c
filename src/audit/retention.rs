//! Housekeeping of the audit directory: one file per proxy process piles up (desktop hosts
//! start a `wrap` per server, often several times an hour). At start-up each process removes
//! files that hold nothing (a process that ended before its first record) and, per
//! `audit.retention_days` and `audit.max_files`, the oldest ones. A file whose process is still
//! running is never touched: its name carries the pid.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Files last written longer ago than this are removed; 0 keeps them forever.
    pub days: u64,
    /// At most this many files are kept (the newest); 0 means no limit.
    pub max_files: usize,
}

/// What a pass removed, for the start-up note.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub empty: usize,
    pub expired: usize,
    pub over_count: usize,
}

/// The pid in `<ts>-<server>-<pid>.jsonl` (the names `AuditLog::open` gives).
fn pid_of(path: &Path) -> Option<i32> {
    let stem = path.file_stem()?.to_str()?;
    stem.rsplit('-').next()?.parse().ok()
}

fn running(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid == std::process::id() as i32 || unsafe { libc::kill(pid, 0) } == 0
}

/// Prune `dir` (never `keep`, the file this process writes).
pub fn prune(dir: &Path, keep: &Path, policy: Retention, now: SystemTime) -> io::Result<Pruned> {
    let mut files: Vec<(PathBuf, SystemTime, u64)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") || path == keep {
            continue;
        }
        if pid_of(&path).is_some_and(running) {
            continue;
        }
        let meta = fs::metadata(&path)?;
        if !meta.is_file() {
            continue;
        }
        files.push((path, meta.modified().unwrap_or(now), meta.len()));
    }
    let mut out = Pruned::default();
    let mut kept = Vec::new();
    for (path, modified, len) in files {
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if len == 0 {
            fs::remove_file(&path)?;
            out.empty += 1;
        } else if policy.days > 0 && age > Duration::from_secs(policy.days * 86_400) {
            fs::remove_file(&path)?;
            out.expired += 1;
        } else {
            kept.push((path, modified));
        }
    }
    if policy.max_files > 0 {
        // This process's own file counts too.
        let allowed = policy.max_files.saturating_sub(1);
        if kept.len() > allowed {
            kept.sort_by_key(|(_, m)| *m);
            let excess = kept.len() - allowed;
            for (path, _) in kept.into_iter().take(excess) {
                fs::remove_file(&path)?;
                out.over_count += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_expired_and_excess_files_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let me = std::process::id();
        // Dead pids: a pid far above pid_max cannot be running.
        let dead = 99_999_999;
        let own = d.join(format!("20261204T000000Z-fs-{me}.jsonl"));
        std::fs::write(&own, "").unwrap();
        let empty = d.join(format!("20261201T000000Z-fs-{dead}.jsonl"));
        std::fs::write(&empty, "").unwrap();
        let mut full = Vec::new();
        for i in 0..4 {
            let p = d.join(format!("2026120{i}T000000Z-gh-{}.jsonl", dead - 1 - i));
            std::fs::write(&p, "{}\n").unwrap();
            full.push(p);
        }
        let other = d.join("notes.txt");
        std::fs::write(&other, "x").unwrap();
        // The first file is old: older than 1 day by the clock we pass.
        let now = SystemTime::now() + Duration::from_secs(3 * 86_400);
        let fresh = std::fs::File::options().write(true).open(&full[3]).unwrap();
        fresh.set_modified(now).unwrap();
        let r = prune(
            d,
            &own,
            Retention {
                days: 1,
                max_files: 0,
            },
            now,
        )
        .unwrap();
        assert_eq!(r.empty, 1);
        assert_eq!(r.expired, 3);
        assert!(own.exists() && other.exists() && full[3].exists() && !empty.exists());

        for i in 0..3 {
            let p = d.join(format!("2026120{i}T000001Z-gh-{}.jsonl", dead - 10 - i));
            std::fs::write(&p, "{}\n").unwrap();
        }
        let r = prune(
            d,
            &own,
            Retention {
                days: 0,
                max_files: 3,
            },
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(r.over_count, 2, "{r:?}");
        assert!(own.exists());
    }
}
