//! The audit file writer: one JSON object per line, each line's `prev` the SHA-256 of the line
//! before it, so that an edit, a deletion or a reordering breaks the chain at that line.
//!
//! Each proxy process writes its own file (`<start>-<server>-<pid>.jsonl`): desktop hosts run
//! several `wrap` processes for one server, and one chain per writer needs no cross-process lock
//! on the hot path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::record::Record;
use crate::timefmt;

/// When the writer forces records to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// Every record is flushed and synced before the message moves on.
    Always,
    /// Records are flushed and synced at most 100 ms later.
    Batch,
    /// Records are flushed every 100 ms and left to the OS to sync.
    Never,
}

/// The hash that starts every chain (the `prev` of line 1).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub struct AuditLog {
    path: PathBuf,
    fsync: Fsync,
    inner: Mutex<Inner>,
    ids: AtomicU64,
}

struct Inner {
    out: BufWriter<File>,
    seq: u64,
    prev: String,
    dirty: bool,
}

impl AuditLog {
    /// Create the audit directory if needed and open a new file for this process.
    pub fn open(dir: &Path, server: &str, fsync: Fsync) -> io::Result<Arc<AuditLog>> {
        fs::create_dir_all(dir)?;
        let safe: String = server
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = format!(
            "{}-{}-{}.jsonl",
            timefmt::compact(SystemTime::now()),
            safe,
            std::process::id()
        );
        Self::open_file(&dir.join(name), fsync)
    }

    /// Open (append to) a specific file, continuing its chain if it already has lines.
    pub fn open_file(path: &Path, fsync: Fsync) -> io::Result<Arc<AuditLog>> {
        let (seq, prev) = match fs::read(path) {
            Ok(bytes) => last_link(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, GENESIS.to_owned()),
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Arc::new(AuditLog {
            path: path.to_owned(),
            fsync,
            inner: Mutex::new(Inner {
                out: BufWriter::with_capacity(64 * 1024, file),
                seq,
                prev,
                dirty: false,
            }),
            ids: AtomicU64::new(1),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh audit id for a message of `session`, quoted in error responses before the record
    /// itself is written.
    pub fn next_audit_id(&self, session: &str) -> String {
        format!("{session}-{}", self.ids.fetch_add(1, Ordering::Relaxed))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent writer (each write is one line).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append one record. With `Fsync::Always` it is on disk when this returns.
    pub fn write(&self, rec: Record) -> io::Result<()> {
        self.append(rec, self.fsync == Fsync::Always)
    }

    /// Append one record and make it durable now, whatever the fsync setting: used before a
    /// high-risk call is forwarded.
    pub fn write_durable(&self, rec: Record) -> io::Result<()> {
        self.append(rec, true)
    }

    fn append(&self, mut rec: Record, sync: bool) -> io::Result<()> {
        let mut inner = self.lock();
        inner.seq += 1;
        rec.seq = inner.seq;
        rec.ts = timefmt::rfc3339_micros(SystemTime::now());
        rec.prev = std::mem::take(&mut inner.prev);
        let line = serde_json::to_vec(&rec).map_err(io::Error::other)?;
        inner.prev = hex::encode(Sha256::digest(&line));
        inner.out.write_all(&line)?;
        inner.out.write_all(b"\n")?;
        inner.dirty = true;
        if sync {
            inner.out.flush()?;
            inner.out.get_ref().sync_data()?;
            inner.dirty = false;
        }
        Ok(())
    }

    /// Flush buffered lines, syncing them when the policy asks for it.
    pub fn flush(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if !inner.dirty {
            return Ok(());
        }
        inner.out.flush()?;
        if self.fsync != Fsync::Never {
            inner.out.get_ref().sync_data()?;
        }
        inner.dirty = false;
        Ok(())
    }

    /// The chain head: (seq, hash of the last line).
    pub fn head(&self) -> (u64, String) {
        let inner = self.lock();
        (inner.seq, inner.prev.clone())
    }

    /// Flush every 100 ms on a background thread for as long as the log lives.
    pub fn start_flusher(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("audit-flush".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(100));
                match weak.upgrade() {
                    Some(log) => {
                        if let Err(e) = log.flush() {
                            tracing::error!("audit flush failed: {e}");
                        }
                    }
                    None => return,
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the audit flusher: {e}");
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Sequence number and hash of the last complete line of an existing file.
fn last_link(bytes: &[u8]) -> (u64, String) {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => &bytes[..i],
        None => return (0, GENESIS.to_owned()),
    };
    let last = complete.rsplit(|&b| b == b'\n').next().unwrap_or_default();
    let seq = serde_json::from_slice::<serde_json::Value>(last)
        .ok()
        .and_then(|v| v.get("seq").and_then(|s| s.as_u64()))
        .unwrap_or(0);
    (seq, hex::encode(Sha256::digest(last)))
}
