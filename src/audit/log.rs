//! The audit file writer: one JSON object per line, each line's `prev` the SHA-256 of the line
//! before it, so that an edit, a deletion or a reordering breaks the chain at that line.
//!
//! Each proxy process writes its own file (`<start>-<server>-<pid>.jsonl`): desktop hosts run
//! several `wrap` processes for one server, and one chain per writer needs no cross-process lock
//! on the hot path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Queued lines are written (not synced) by the appending thread once they pass this size.
const WRITE_AT: usize = 64 * 1024;
/// Past this, an appending thread waits for a write in progress rather than queue more.
const QUEUE_MAX: usize = 1024 * 1024;

/// Two locks, so that the relay threads never wait for the disk: `chain` (sequence, hash chain,
/// the lines not yet written) is held only to format and queue one record; `file` is held to
/// write queued lines and sync them. A writer takes `file` first and `chain` only to swap the
/// queue out, so an fsync in progress never blocks a record from being queued.
pub struct AuditLog {
    path: PathBuf,
    fsync: Fsync,
    chain: Mutex<Chain>,
    file: Mutex<Sink>,
    ids: AtomicU64,
}

struct Chain {
    seq: u64,
    /// Hex SHA-256 of the last line (64 characters, the buffer reused).
    prev: String,
    /// Complete lines not yet handed to the file.
    queue: Vec<u8>,
    clock: Timestamps,
    /// A reused buffer for the record's `ts`.
    ts: String,
}

struct Sink {
    file: File,
    /// The queue swapped out of `Chain`, being written; empty (with its capacity) in between.
    spare: Vec<u8>,
    /// Lines were written since the last sync.
    unsynced: bool,
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
            chain: Mutex::new(Chain {
                seq,
                prev,
                queue: Vec::with_capacity(WRITE_AT + 4096),
                clock: Timestamps::default(),
                ts: String::with_capacity(32),
            }),
            file: Mutex::new(Sink {
                file,
                spare: Vec::with_capacity(WRITE_AT + 4096),
                unsynced: false,
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
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(session.len() + 21);
        id.push_str(session);
        id.push('-');
        push_decimal(&mut id, n);
        id
    }

    // A panic while holding either lock leaves consistent state (each queued line is whole).
    fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn file(&self) -> MutexGuard<'_, Sink> {
        self.file.lock().unwrap_or_else(|p| p.into_inner())
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
        let queued = {
            let mut guard = self.chain();
            let chain = &mut *guard;
            chain.seq += 1;
            rec.seq = chain.seq;
            // `ts` and `prev` are lent to the record for serialisation, then taken back: no
            // allocation for either.
            chain.clock.format(SystemTime::now(), &mut chain.ts);
            std::mem::swap(&mut rec.ts, &mut chain.ts);
            std::mem::swap(&mut rec.prev, &mut chain.prev);
            let start = chain.queue.len();
            let serialised = serde_json::to_writer(&mut chain.queue, &rec);
            std::mem::swap(&mut rec.ts, &mut chain.ts);
            std::mem::swap(&mut rec.prev, &mut chain.prev);
            if let Err(e) = serialised {
                chain.queue.truncate(start);
                chain.seq -= 1;
                return Err(io::Error::other(e));
            }
            let digest = Sha256::digest(&chain.queue[start..]);
            chain.prev.clear();
            push_hex(&mut chain.prev, &digest);
            chain.queue.push(b'\n');
            chain.queue.len()
        };
        drop(rec);
        if sync {
            return self.write_out(true);
        }
        if queued >= WRITE_AT {
            // Hand the queue to the file now, unless someone else is writing (then they, or
            // the flusher, will) and the queue is not yet too long.
            let sink = match self.file.try_lock() {
                Ok(s) => Some(s),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) if queued >= QUEUE_MAX => Some(self.file()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut sink) = sink {
                self.write_queue(&mut sink)?;
            }
        }
        Ok(())
    }

    /// Swap the queue out (under the chain lock, briefly) and write it (under the file lock).
    fn write_queue(&self, sink: &mut Sink) -> io::Result<()> {
        std::mem::swap(&mut self.chain().queue, &mut sink.spare);
        if sink.spare.is_empty() {
            return Ok(());
        }
        let written = sink.file.write_all(&sink.spare);
        sink.spare.clear();
        if sink.spare.capacity() > QUEUE_MAX {
            sink.spare = Vec::with_capacity(WRITE_AT + 4096);
        }
        sink.unsynced = true;
        written
    }

    /// Write everything queued so far; with `sync`, make it durable too.
    fn write_out(&self, sync: bool) -> io::Result<()> {
        let mut sink = self.file();
        self.write_queue(&mut sink)?;
        if sync && sink.unsynced {
            sink.file.sync_data()?;
            sink.unsynced = false;
        }
        Ok(())
    }

    /// Flush queued lines, syncing them when the policy asks for it.
    pub fn flush(&self) -> io::Result<()> {
        self.write_out(self.fsync != Fsync::Never)
    }

    /// The chain head: (seq, hash of the last line).
    pub fn head(&self) -> (u64, String) {
        let chain = self.chain();
        (chain.seq, chain.prev.clone())
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

/// `timefmt::rfc3339_micros`, with the part up to the seconds formatted once per second.
#[derive(Default)]
struct Timestamps {
    secs: Option<u64>,
    /// `2026-11-22T21:30:00.`
    prefix: String,
}

impl Timestamps {
    fn format(&mut self, t: SystemTime, out: &mut String) {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.secs != Some(d.as_secs()) {
            let whole = timefmt::rfc3339_micros(UNIX_EPOCH + Duration::from_secs(d.as_secs()));
            // Drop the "000000Z" of the whole second.
            self.prefix.clear();
            self.prefix.push_str(&whole[..whole.len() - 7]);
            self.secs = Some(d.as_secs());
        }
        out.clear();
        out.push_str(&self.prefix);
        let mut micros = d.subsec_micros();
        let mut digits = [b'0'; 6];
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        out.extend(digits.iter().map(|&b| b as char));
        out.push('Z');
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&b| b as char));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_timestamps_match_timefmt() {
        let mut ts = Timestamps::default();
        let mut out = String::new();
        for micros in [
            0u64,
            1,
            999_999,
            1_000_000,
            1_767_225_599_999_999,
            1_767_225_600_000_001,
            1_767_225_600_123_456,
            1_767_225_601_000_000,
            951_782_400_500_000,
        ] {
            let t = UNIX_EPOCH + Duration::from_micros(micros);
            ts.format(t, &mut out);
            assert_eq!(out, timefmt::rfc3339_micros(t), "at {micros} µs");
        }
    }

    #[test]
    fn audit_ids_and_hex() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open_file(&dir.path().join("a.jsonl"), Fsync::Never).unwrap();
        assert_eq!(log.next_audit_id("s1"), "s1-1");
        assert_eq!(log.next_audit_id("s1"), "s1-2");
        let mut s = String::new();
        push_decimal(&mut s, u64::MAX);
        assert_eq!(s, u64::MAX.to_string());
        let mut h = String::new();
        push_hex(&mut h, &[0x00, 0xab, 0x7f]);
        assert_eq!(h, "00ab7f");
    }

    #[test]
    fn chain_survives_queue_writes_and_reopen() {
        use crate::audit::{Direction, Record};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let log = AuditLog::open_file(&path, Fsync::Batch).unwrap();
        // Enough records to pass WRITE_AT several times, some durable.
        for i in 0..2000u64 {
            let mut r = Record::new("s", "srv", Direction::ClientToServer, i);
            r.reason = Some("x".repeat(100));
            if i % 97 == 0 {
                log.write_durable(r).unwrap();
            } else {
                log.write(r).unwrap();
            }
        }
        let (seq, head) = log.head();
        assert_eq!(seq, 2000);
        drop(log);
        let bytes = fs::read(&path).unwrap();
        let mut prev = GENESIS.to_owned();
        let mut n = 0u64;
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            n += 1;
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(v["seq"], n);
            assert_eq!(v["prev"], prev.as_str());
            prev = hex::encode(Sha256::digest(line));
        }
        assert_eq!((n, prev.clone()), (2000, head));
        let again = AuditLog::open_file(&path, Fsync::Never).unwrap();
        assert_eq!(again.head(), (2000, prev));
    }
}
