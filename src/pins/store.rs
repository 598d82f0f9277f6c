//! Where pin files live and how several processes share them (SPEC §5: desktop hosts start 2–5
//! `wrap` processes for one server at once).
//!
//! - Every read-modify-write runs under an exclusive `flock` on a sidecar `<pin file>.lock`.
//!   The sidecar is never deleted or replaced: locking the data file itself would not survive
//!   the rename below, and deleting a lock file lets two processes lock two different inodes.
//!   `flock` locks belong to the open file description, so threads of one process that each open
//!   the sidecar exclude each other too.
//! - Every write goes to a fresh temporary file in the same directory, is fsynced, then renamed
//!   over the target: a reader, locked or not, sees the old file or the new one, never a mix.
//! - Reads take a shared lock so the pin file and the held file are seen as one pair.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fsutil::FileLock;
use crate::pins::error::PinError;
use crate::pins::held::HeldFile;

const HELD_SUFFIX: &str = ".held.json";

/// The files that make up one server's pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPaths {
    pub pin: PathBuf,
    pub held: PathBuf,
    pub lock: PathBuf,
    /// Marker left once a pin file was written: a pin file that later disappears is then
    /// missing (an alert, everything held), not a first use.
    pub seen: PathBuf,
}

impl PinPaths {
    fn for_pin(pin: PathBuf) -> Self {
        let text = pin.to_string_lossy();
        let held = match text.strip_suffix(".json") {
            Some(stem) => PathBuf::from(format!("{stem}{HELD_SUFFIX}")),
            None => PathBuf::from(format!("{text}{HELD_SUFFIX}")),
        };
        let lock = PathBuf::from(format!("{text}.lock"));
        let seen = PathBuf::from(format!("{text}.seen"));
        PinPaths {
            pin,
            held,
            lock,
            seen,
        }
    }
}

/// One server's files as read under the lock. `update` writes back what the closure changed.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub paths: PinPaths,
    /// The pin file as raw JSON: attestation is verified over exactly this.
    pub pin: Option<Value>,
    pub held: Option<HeldFile>,
    /// A pin file existed for this server before (its `seen` marker is there).
    pub seen: bool,
}

/// The pin directory plus per-server file overrides from config (teams commit those).
#[derive(Debug, Clone)]
pub struct PinStore {
    dir: PathBuf,
    files: BTreeMap<String, PathBuf>,
}

impl PinStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PinStore {
            dir: dir.into(),
            files: BTreeMap::new(),
        }
    }

    /// Keeps `server`'s pins at `path` instead of `<dir>/<server>.json`.
    pub fn with_file(mut self, server: &str, path: impl Into<PathBuf>) -> Self {
        self.files.insert(server.to_string(), path.into());
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn paths(&self, server: &str) -> Result<PinPaths, PinError> {
        check_server_name(server)?;
        let pin = match self.files.get(server) {
            Some(path) => path.clone(),
            None => self.dir.join(format!("{server}.json")),
        };
        Ok(PinPaths::for_pin(pin))
    }

    /// Servers with a pin file or a held file, sorted.
    pub fn servers(&self) -> Result<Vec<String>, PinError> {
        let mut names: Vec<String> = self.files.keys().cloned().collect();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(PinError::io(&self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| PinError::io(&self.dir, e))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let stem = file_name
                .strip_suffix(HELD_SUFFIX)
                .or_else(|| file_name.strip_suffix(".json"));
            if let Some(stem) = stem.filter(|s| check_server_name(s).is_ok()) {
                names.push(stem.to_string());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Reads both files under a shared lock. A missing directory reads as "nothing pinned", and a
    /// directory we may not write (a committed, read-only checkout) is read without the lock: the
    /// atomic renames still guarantee whole files.
    pub fn read(&self, server: &str) -> Result<Snapshot, PinError> {
        let paths = self.paths(server)?;
        let _guard = match FileLock::shared(&paths.lock) {
            Ok(guard) => Some(guard),
            Err(e) if lock_unavailable(&e) => None,
            Err(e) => return Err(PinError::io(&paths.lock, e)),
        };
        load(paths)
    }

    /// Read-modify-write under the exclusive lock. Only files whose content the closure changed
    /// are written; an error from the closure writes nothing.
    pub fn update<R>(
        &self,
        server: &str,
        f: impl FnOnce(&mut Snapshot) -> Result<R, PinError>,
    ) -> Result<R, PinError> {
        let paths = self.paths(server)?;
        if let Some(parent) = paths.lock.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| PinError::io(parent, e))?;
        }
        let _guard = FileLock::exclusive(&paths.lock).map_err(|e| PinError::io(&paths.lock, e))?;
        let before = load(paths)?;
        let mut after = before.clone();
        let result = f(&mut after)?;
        if after.pin != before.pin {
            match &after.pin {
                Some(pin) => write_atomic(&before.paths.pin, pin)?,
                None => remove(&before.paths.pin)?,
            }
        }
        if after.pin.is_some() && !before.seen {
            fs::write(&before.paths.seen, b"").map_err(|e| PinError::io(&before.paths.seen, e))?;
        }
        if after.held != before.held {
            match after.held.as_ref().filter(|h| !h.is_empty()) {
                Some(held) => write_atomic(&before.paths.held, &held.to_value()?)?,
                None => remove(&before.paths.held)?,
            }
        }
        Ok(result)
    }
}

/// Server names become file names: no separators, no `..`, no hidden files, no clash with the
/// held sidecar of another server.
pub fn check_server_name(server: &str) -> Result<(), PinError> {
    let ok = !server.is_empty()
        && server.len() <= 128
        && !server.starts_with('.')
        && !server.ends_with(".held")
        && server
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'));
    if ok {
        Ok(())
    } else {
        Err(PinError::BadServerName(server.to_string()))
    }
}

fn load(paths: PinPaths) -> Result<Snapshot, PinError> {
    let pin = read_json(&paths.pin)?;
    let held = match read_json(&paths.held)? {
        Some(value) => Some(HeldFile::from_value(&value, &paths.held)?),
        None => None,
    };
    let seen = paths.seen.exists();
    Ok(Snapshot {
        paths,
        pin,
        held,
        seen,
    })
}

fn read_json(path: &Path) -> Result<Option<Value>, PinError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| PinError::Format {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PinError::io(path, e)),
    }
}

/// Pretty JSON with a final newline, replaced atomically (`fsutil::write_atomic`).
pub(crate) fn write_atomic(path: &Path, value: &Value) -> Result<(), PinError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| PinError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    crate::fsutil::write_atomic(path, &bytes).map_err(|e| PinError::io(path, e))
}

fn remove(path: &Path) -> Result<(), PinError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PinError::io(path, e)),
    }
}

fn lock_unavailable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::file::Origin;
    use serde_json::json;

    #[test]
    fn names_and_paths() {
        let store = PinStore::new("/s/pins").with_file("team", "/repo/pins/team.json");
        let p = store.paths("fs").unwrap();
        assert_eq!(p.pin, PathBuf::from("/s/pins/fs.json"));
        assert_eq!(p.held, PathBuf::from("/s/pins/fs.held.json"));
        assert_eq!(p.lock, PathBuf::from("/s/pins/fs.json.lock"));
        assert_eq!(
            store.paths("team").unwrap().held,
            PathBuf::from("/repo/pins/team.held.json")
        );
        for bad in ["", "../x", "a/b", ".hidden", "x.held", "a b", "é"] {
            assert!(store.paths(bad).is_err(), "{bad:?}");
        }
        assert!(store.paths("everything@2").is_ok());
    }

    #[test]
    fn update_writes_only_changes_and_lists_servers() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::new(dir.path().join("pins"));
        assert!(store.servers().unwrap().is_empty(), "missing dir is empty");
        assert!(store.read("fs").unwrap().pin.is_none());
        store
            .update("fs", |s| {
                s.pin = Some(json!({"a": 1}));
                Ok(())
            })
            .unwrap();
        store
            .update("gh", |s| {
                let mut held = HeldFile::new("gh", Origin::Url { url: "u".into() });
                held.hold(
                    crate::pins::file::Kind::Tool,
                    "t",
                    crate::pins::held::HeldItem {
                        reason: crate::pins::held::HeldReason::New,
                        sha256: "x".into(),
                        definition: json!({"name": "t"}),
                        findings: vec![],
                        exposed: false,
                        first_seen: "now".into(),
                    },
                );
                s.held = Some(held);
                Ok(())
            })
            .unwrap();
        assert_eq!(store.servers().unwrap(), vec!["fs", "gh"]);
        assert_eq!(store.read("fs").unwrap().pin, Some(json!({"a": 1})));
        assert!(store.read("gh").unwrap().held.is_some());
        // A failing closure writes nothing.
        let failed: Result<(), _> = store.update("fs", |s| {
            s.pin = Some(json!({"a": 2}));
            Err(PinError::NoPins("fs".into()))
        });
        assert!(failed.is_err());
        assert_eq!(store.read("fs").unwrap().pin, Some(json!({"a": 1})));
        // Emptying the held file removes it.
        store
            .update("gh", |s| {
                s.held = None;
                Ok(())
            })
            .unwrap();
        assert!(!store.paths("gh").unwrap().held.exists());
        let leftovers: Vec<_> = fs::read_dir(store.dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temp files left behind");
    }

    #[test]
    fn torn_or_garbage_files_are_errors_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::new(dir.path());
        fs::write(dir.path().join("fs.json"), b"{\"server\": \"fs\"").unwrap();
        assert!(matches!(store.read("fs"), Err(PinError::Format { .. })));
    }
}
