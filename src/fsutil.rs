//! The proxy's state files are shared by processes (several `wrap`s and `connect`s, `approve`
//! from a shell, the admin port): one way to replace a file atomically and durably, and one
//! advisory lock, instead of a copy per store; and one file-name sanitizer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` so that a reader sees the old file or the new one, never half,
/// and the new one survives a crash: a temp file in the same directory (rename is only atomic
/// within one filesystem; a unique name per process and call, so concurrent writers never share
/// one), the permissions of the file it replaces, fsync, rename, then a best-effort fsync of the
/// directory (some filesystems refuse it; the data itself is durable by then). The path itself
/// is replaced: a symlink there is replaced, not written through (callers that want that resolve
/// it first).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        if let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An advisory `flock` on a sidecar file, held until drop. Closing the descriptor releases it,
/// also when the process dies, so a crashed writer never wedges the others. `flock` locks
/// belong to the open file description: two guards in one process exclude each other too.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits for the exclusive lock (writers).
    pub fn exclusive(path: &Path) -> io::Result<FileLock> {
        FileLock::acquire(path, libc::LOCK_EX)
    }

    /// Waits for a shared lock (readers that must not see a read-modify-write half done).
    pub fn shared(path: &Path) -> io::Result<FileLock> {
        FileLock::acquire(path, libc::LOCK_SH)
    }

    fn acquire(path: &Path, op: libc::c_int) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        loop {
            // SAFETY: `file` owns a valid open descriptor for the duration of the call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            if rc == 0 {
                return Ok(FileLock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// `name` made safe for a file name (or a label derived from one): ASCII letters and digits
/// and the characters in `keep` kept, anything else replaced by `other`.
pub fn safe_name(name: &str, keep: &[char], other: char) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || keep.contains(&c) {
                c
            } else {
                other
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_keeps_mode_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub");
        fs::create_dir(&path).unwrap();
        // Renaming a file over a directory fails: nothing may be left behind.
        assert!(write_atomic(&path, b"x").is_err());
        assert!(path.is_dir());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn exclusive_locks_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.lock");
        let held = FileLock::exclusive(&lock).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = lock.clone();
        let waiter = std::thread::spawn(move || {
            let _second = FileLock::exclusive(&path).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(100))
            .is_err());
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        let _shared_a = FileLock::shared(&lock).unwrap();
        let _shared_b = FileLock::shared(&lock).unwrap();
    }
}
