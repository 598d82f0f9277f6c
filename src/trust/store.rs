//! Persistence: `trust/<server>.json` in the state dir, shared by every proxy process.
//!
//! Desktop hosts start several `wrap` processes for one server (SPEC §5), all recording into the
//! same file. Writers take an exclusive `flock` on a sidecar `<file>.lock` around
//! read-merge-write, so no update is lost; the new content goes to a temp file that is fsynced and
//! renamed over the old one, so a reader (which takes no lock) sees the old or the new file, never
//! a torn one, and a crash mid-write leaves the previous file intact. The lock lives on a sidecar
//! because the data file's inode is replaced on every write.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::buckets::History;
use crate::fsutil::FileLock;

/// Longest encoded file stem accepted; file names are at most 255 bytes on common filesystems.
const MAX_STEM: usize = 200;

/// Where the histories live instead of the files when several replicas share them
/// (`[cluster]`: `cluster/trust.rs`), so `trust` and `/api/v1/servers` agree on every replica.
pub trait SharedTrust: Send + Sync {
    fn load(&self, server: &str) -> io::Result<History>;
    /// Merge `batch` atomically, prune to the window ending at `now`, return the result.
    fn update(&self, server: &str, batch: &History, now: u64) -> io::Result<History>;
    fn servers(&self) -> io::Result<Vec<String>>;
}

/// The `trust/` directory of a state dir (or the shared store, with `[cluster]`).
#[derive(Clone)]
pub struct TrustStore {
    dir: PathBuf,
    shared: Option<std::sync::Arc<dyn SharedTrust>>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("dir", &self.dir)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl TrustStore {
    /// The store under `<state_dir>/trust`.
    pub fn new(state_dir: &Path) -> Self {
        TrustStore {
            dir: state_dir.join("trust"),
            shared: None,
        }
    }

    /// A store in exactly `dir` (tests, or a configured location).
    pub fn in_dir(dir: PathBuf) -> Self {
        TrustStore { dir, shared: None }
    }

    /// Keep the histories in `shared` instead of the files.
    pub fn with_shared(mut self, shared: std::sync::Arc<dyn SharedTrust>) -> Self {
        self.shared = Some(shared);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `trust/<server>.json`, the name escaped so that no server name can leave the directory.
    pub fn path_of(&self, server: &str) -> io::Result<PathBuf> {
        Ok(self.dir.join(format!("{}.json", file_stem(server)?)))
    }

    /// Whether the proxy ever recorded anything about `server`.
    pub fn exists(&self, server: &str) -> bool {
        if let Some(shared) = &self.shared {
            return shared.load(server).is_ok_and(|h| !h.is_empty());
        }
        self.path_of(server).map(|p| p.exists()).unwrap_or(false)
    }

    /// The server's history; an empty one when no file exists yet. Takes no lock: renames are
    /// atomic, so the file read is always a complete one.
    pub fn load(&self, server: &str) -> io::Result<History> {
        if let Some(shared) = &self.shared {
            return shared.load(server);
        }
        let path = self.path_of(server)?;
        match fs::read(&path) {
            Ok(bytes) => parse(&path, &bytes, server),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(History::new(server)),
            Err(e) => Err(e),
        }
    }

    /// Merges `batch` into the server's file under the lock, prunes buckets outside the window
    /// ending at `now`, writes it atomically and returns the merged history.
    ///
    /// A file that does not parse (hand-edited, or written by a future version) is moved aside to
    /// `<file>.corrupt` rather than deleted, and recording starts over: refusing to record would
    /// freeze the score forever, and the evidence stays for the operator to inspect.
    pub fn update(&self, server: &str, batch: &History, now: u64) -> io::Result<History> {
        if let Some(shared) = &self.shared {
            return shared.update(server, batch, now);
        }
        let path = self.path_of(server)?;
        fs::create_dir_all(&self.dir)?;
        let _lock = FileLock::exclusive(&with_suffix(&path, ".lock"))?;
        let mut history = match fs::read(&path) {
            Ok(bytes) => match parse(&path, &bytes, server) {
                Ok(h) => h,
                Err(_) => {
                    fs::rename(&path, with_suffix(&path, ".corrupt"))?;
                    History::new(server)
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => History::new(server),
            Err(e) => return Err(e),
        };
        history.merge(batch);
        history.prune(now);
        write_atomically(&path, &history)?;
        Ok(history)
    }

    /// Names of the servers with a trust file, sorted.
    pub fn servers(&self) -> io::Result<Vec<String>> {
        if let Some(shared) = &self.shared {
            return shared.servers();
        }
        let entries = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name();
                let stem = name.to_str()?.strip_suffix(".json")?.to_string();
                server_of(&stem)
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

fn parse(path: &Path, bytes: &[u8], server: &str) -> io::Result<History> {
    let mut h: History = serde_json::from_slice(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    // The file name is the authority; the field inside is informational.
    h.server = server.to_string();
    Ok(h)
}

/// Replaced atomically and durably (`fsutil::write_atomic`): readers never see half a file.
fn write_atomically(path: &Path, history: &History) -> io::Result<()> {
    let bytes = serde_json::to_vec(history).map_err(io::Error::other)?;
    crate::fsutil::write_atomic(path, &bytes)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(OsStr::new(suffix));
    PathBuf::from(s)
}

/// Escapes a server name into a file stem: `[A-Za-z0-9_-]` and inner dots stay, every other byte
/// becomes `%XX`. Reversible (for listing) and never `.`, `..`, or a path with a separator.
fn file_stem(server: &str) -> io::Result<String> {
    if server.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty server name",
        ));
    }
    let mut out = String::with_capacity(server.len());
    for (i, b) in server.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > MAX_STEM {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "server name too long for a file name",
        ));
    }
    Ok(out)
}

/// Inverse of `file_stem`; `None` for names this store did not write.
fn server_of(stem: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(stem.len());
    let mut it = stem.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex = [it.next()?, it.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    let name = String::from_utf8(bytes).ok()?;
    (file_stem(&name).ok()? == stem).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::buckets::{Counter, SECS_PER_DAY, WINDOW_DAYS};
    use crate::trust::events::{Event, Observation};

    const T0: u64 = 1_780_000_000;

    fn batch(server: &str, at: u64, n: usize) -> History {
        let mut h = History::new(server);
        for _ in 0..n {
            h.apply(&Event::new(at, Observation::CallOk));
        }
        h
    }

    #[test]
    fn names_cannot_escape_the_directory_and_round_trip() {
        for name in [
            "filesystem",
            "../etc/passwd",
            ".hidden",
            "a/b",
            "ünï",
            "x.y",
            "%41",
        ] {
            let stem = file_stem(name).unwrap();
            assert!(!stem.contains('/') && !stem.starts_with('.'), "{stem}");
            assert_eq!(server_of(&stem).as_deref(), Some(name));
        }
        assert!(file_stem("").is_err());
        assert!(file_stem(&"x".repeat(300)).is_err());
        assert_eq!(server_of("%4"), None);
        assert_eq!(server_of("%41"), None, "not what file_stem writes for 'A'");
    }

    #[test]
    fn missing_file_is_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        let h = store.load("fs").unwrap();
        assert!(h.is_empty());
        assert!(!store.exists("fs"));
        assert!(store.servers().unwrap().is_empty());
    }

    #[test]
    fn updates_accumulate_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        store.update("fs", &batch("fs", T0, 2), T0).unwrap();
        let merged = store.update("fs", &batch("fs", T0, 3), T0).unwrap();
        assert_eq!(merged.total(Counter::CallsOk, T0), 5);
        assert_eq!(store.load("fs").unwrap(), merged);
        store.update("a/b", &batch("a/b", T0, 1), T0).unwrap();
        assert_eq!(store.servers().unwrap(), ["a/b", "fs"]);
        let leftovers: Vec<_> = fs::read_dir(store.dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn update_prunes_to_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        for d in 0..45 {
            let at = T0 + d * SECS_PER_DAY;
            store.update("fs", &batch("fs", at, 1), at).unwrap();
        }
        let h = store.load("fs").unwrap();
        assert_eq!(h.days.len() as u64, WINDOW_DAYS, "the file stays bounded");
        assert_eq!(h.first_seen, Some(T0));
    }

    #[test]
    fn corrupt_file_is_kept_aside_and_recording_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        fs::create_dir_all(store.dir()).unwrap();
        let path = store.path_of("fs").unwrap();
        fs::write(&path, b"{\"server\":").unwrap();
        let err = store.load("fs").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("fs.json"), "{err}");
        let h = store.update("fs", &batch("fs", T0, 1), T0).unwrap();
        assert_eq!(h.total(Counter::CallsOk, T0), 1);
        assert_eq!(
            fs::read(with_suffix(&path, ".corrupt")).unwrap(),
            b"{\"server\":"
        );
    }
}
