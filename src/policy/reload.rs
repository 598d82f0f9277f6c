//! `PolicyHandle`: the live policy, reloaded on file change and on SIGHUP.
//!
//! Readers call `current()` and keep the returned `Arc<PolicySet>` for the
//! whole request, so a request (including one waiting for approval) is
//! decided by exactly one policy version, the one it started with (OPS-01).
//! A reload builds a complete new set first and swaps the pointer only on
//! success; a bad file leaves the previous set in force and the error
//! (path, line, reason) goes to the caller to audit as `config.rejected`.
//!
//! Change detection polls (no inotify dependency): every `interval` the
//! watcher thread hashes the directory's `*.toml` names and contents the way
//! `PolicySet::version` does, and reloads when the hash differs from both
//! the live version and the last hash it tried. So a broken file is reported
//! once, not every tick, and a fixed one is picked up on the next tick.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::policy::file::{PolicyError, MAX_FILE_BYTES};
use crate::policy::set::{content_version, policy_paths, PolicySet};

/// What a successful `reload()` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new version is live (audit `config.applied`).
    Applied { old: String, new: String },
    /// The files hash to the live version; nothing changed.
    Unchanged { version: String },
}

/// The shared, swappable policy. Put it in an `Arc`.
pub struct PolicyHandle {
    dir: PathBuf,
    /// The built-in packs are part of every load (see `PolicySet::load_layered`).
    builtin: bool,
    current: RwLock<Arc<PolicySet>>,
    /// Serialises reloads (watcher tick and SIGHUP may race).
    reloading: Mutex<()>,
}

impl PolicyHandle {
    /// Load `dir` now; an error here is a startup error.
    pub fn load(dir: &Path) -> Result<PolicyHandle, PolicyError> {
        let set = PolicySet::load_dir(dir)?;
        Ok(PolicyHandle::with_set(dir, set))
    }

    /// The built-in packs (if `builtin`) plus `dir`'s files, now and on every reload.
    pub fn open(dir: &Path, builtin: bool) -> Result<PolicyHandle, PolicyError> {
        let set = PolicySet::load_layered(dir, builtin)?;
        let mut handle = PolicyHandle::with_set(dir, set);
        handle.builtin = builtin;
        Ok(handle)
    }

    /// Wrap an already loaded set (e.g. `PolicySet::empty()` when the
    /// operator configured no directory); `reload()` reads `dir`.
    pub fn with_set(dir: &Path, set: PolicySet) -> PolicyHandle {
        PolicyHandle {
            dir: dir.to_owned(),
            builtin: false,
            current: RwLock::new(Arc::new(set)),
            reloading: Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live policy. Cheap (one read lock, one refcount); keep the `Arc`
    /// for the duration of the request.
    pub fn current(&self) -> Arc<PolicySet> {
        // The lock only guards a pointer swap; a poisoned lock still holds a
        // complete, valid set.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn version(&self) -> String {
        self.current().version().to_string()
    }

    /// Load the directory again; swap on success, keep the old set on error.
    /// This is what the SIGHUP handler calls.
    pub fn reload(&self) -> Result<ReloadOutcome, PolicyError> {
        let _guard = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let new = if self.builtin {
            PolicySet::load_layered(&self.dir, true)?
        } else {
            PolicySet::load_dir(&self.dir)?
        };
        let old = self.current();
        if new.version() == old.version() {
            return Ok(ReloadOutcome::Unchanged {
                version: old.version().to_string(),
            });
        }
        let outcome = ReloadOutcome::Applied {
            old: old.version().to_string(),
            new: new.version().to_string(),
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
        Ok(outcome)
    }

    /// Start the polling thread. `sighup`, if given, is a flag set by a
    /// signal handler (see `register_sighup`); the thread reloads when it
    /// finds it set, even if nothing changed. `on_event` receives every
    /// reload result (audit `config.applied` / `config.rejected`).
    pub fn watch<F>(
        self: &Arc<Self>,
        interval: Duration,
        sighup: Option<Arc<AtomicBool>>,
        mut on_event: F,
    ) -> io::Result<Watcher>
    where
        F: FnMut(&Result<ReloadOutcome, PolicyError>) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::clone(self);
        let stop_thread = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("policy-watch".into())
            .spawn(move || {
                let mut last_tried = handle.version();
                while !stop_thread.load(Ordering::SeqCst) {
                    std::thread::park_timeout(interval);
                    if stop_thread.load(Ordering::SeqCst) {
                        break;
                    }
                    let forced = sighup
                        .as_ref()
                        .is_some_and(|f| f.swap(false, Ordering::SeqCst));
                    let seen = fingerprint(handle.dir());
                    if !forced && (seen == last_tried || seen == handle.version()) {
                        last_tried = seen;
                        continue;
                    }
                    last_tried = seen;
                    on_event(&handle.reload());
                }
            })?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }
}

/// Stops and joins the watcher thread when dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // A panicking callback already reported itself; nothing to add.
            let _ = t.join();
        }
    }
}

/// Register a SIGHUP handler that only sets the returned flag (async-signal
/// safe); pass it to `watch`. The lead may instead call `reload()` from its
/// own signal handling task.
pub fn register_sighup() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&flag))?;
    Ok(flag)
}

/// The version the directory would load as, or an error marker (so an
/// unreadable directory is a change that triggers one reload error).
fn fingerprint(dir: &Path) -> String {
    let paths = match policy_paths(dir) {
        Ok(p) => p,
        Err(e) => return format!("error: {e}"),
    };
    let mut texts = Vec::with_capacity(paths.len());
    for p in paths {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Same cap as loading: never read a huge file twice a second.
        if let Ok(m) = std::fs::metadata(&p) {
            if m.len() > MAX_FILE_BYTES {
                return format!("error: {} is too large ({} bytes)", p.display(), m.len());
            }
        }
        match std::fs::read_to_string(&p) {
            Ok(t) => texts.push((name, t)),
            Err(e) => return format!("error: {}: {e}", p.display()),
        }
    }
    content_version(&texts)
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
