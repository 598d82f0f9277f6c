//! Recovery of an audit file whose last line is torn (no trailing newline: the writer died in
//! the middle of a `write(2)`, or the disk filled).
//!
//! Appending after a torn line would glue the next record onto it: one line that is neither
//! record, and a chain that no longer verifies from there on. On open, the torn bytes are moved
//! into a quarantine file next to the log (`<file>.torn-<UTC time>`, kept for the forensics, never
//! deleted by us), synced, and only then cut off the log. The caller records that it did so
//! (`audit.recovered`), so the trail itself says that bytes were removed and where they went.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::timefmt;

/// What was cut off an audit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Bytes after the last newline, now in `quarantine`.
    pub torn_bytes: u64,
    pub quarantine: PathBuf,
}

/// Cut a torn last line off `path`, whose current contents are `bytes`. `None` when the file
/// ends with a newline (or is empty): nothing to do.
pub fn recover(path: &Path, bytes: &[u8]) -> io::Result<Option<Recovered>> {
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(None);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = &bytes[keep..];
    let quarantine = write_quarantine(path, torn)?;
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_all()?;
    Ok(Some(Recovered {
        torn_bytes: torn.len() as u64,
        quarantine,
    }))
}

/// Write `torn` to a new file next to `path`; never overwrite an earlier quarantine.
fn write_quarantine(path: &Path, torn: &[u8]) -> io::Result<PathBuf> {
    let stamp = timefmt::compact(SystemTime::now());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".torn-{stamp}"));
    let base = PathBuf::from(name);
    for n in 0..1000u32 {
        let candidate = if n == 0 {
            base.clone()
        } else {
            let mut s = base.as_os_str().to_owned();
            s.push(format!("-{n}"));
            PathBuf::from(s)
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut f) => {
                f.write_all(torn)?;
                f.sync_all()?;
                sync_dir(path);
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "no free name for the torn-line quarantine file",
    ))
}

/// Make the new directory entry durable too (best effort: not every filesystem allows it).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_quarantined_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let bytes = b"{\"seq\":1}\n{\"seq\":2,\"ev".to_vec();
        std::fs::write(&path, &bytes).unwrap();
        let r = recover(&path, &bytes).unwrap().unwrap();
        assert_eq!(r.torn_bytes, 12);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"seq\":1}\n");
        assert_eq!(std::fs::read(&r.quarantine).unwrap(), b"{\"seq\":2,\"ev");
        // A second recovery in the same second gets its own quarantine file.
        std::fs::write(&path, b"x").unwrap();
        let again = recover(&path, b"x").unwrap().unwrap();
        assert_ne!(again.quarantine, r.quarantine);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn whole_lines_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, b"{}\n").unwrap();
        assert_eq!(recover(&path, b"{}\n").unwrap(), None);
        assert_eq!(recover(&path, b"").unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
