//! The audit file writer: one JSON object per line, each line's `prev` the SHA-256 of the line
//! before it, so that an edit, a deletion or a reordering breaks the chain at that line.
//!
//! Each proxy process writes its own file (`<start>-<server>-<pid>.jsonl`): desktop hosts run
//! several `wrap` processes for one server, and one chain per writer needs no cross-process lock
//! on the hot path.

use std::fmt::Write as _;
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

/// What happens to a message whose audit record cannot be written (`audit.on_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Refused (-32603): exactly one record per message is an invariant, so no record, no
    /// forwarding.
    #[default]
    Refuse,
    /// Forwarded anyway (availability over the audit trail; the operator's explicit choice).
    Forward,
}

/// The hash that starts every chain (the `prev` of line 1).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Queued lines are written (not synced) by the appending thread once they pass this size.
const WRITE_AT: usize = 64 * 1024;
/// Past this, an appending thread waits for a write in progress rather than queue more.
const QUEUE_MAX: usize = 256 * 1024;

/// Three locks, so that the relay threads never wait for the disk:
/// - `chain` (sequence, hash chain, the lines not yet written) is held only to format and queue
///   one record;
/// - `sink` is held to swap the queue out (taking `chain` for the swap alone) and `write(2)` it,
///   which keeps the file in chain order;
/// - `synced` is held for `fdatasync`, which runs outside the other two: a sync in progress
///   delays neither the queueing nor the writing of later records.
///
/// Lock order: `synced` → `sink` → `chain`, each optional.
pub struct AuditLog {
    path: PathBuf,
    fsync: Fsync,
    chain: Mutex<Chain>,
    sink: Mutex<Sink>,
    file: File,
    /// Writes done so far (a generation count, bumped under `sink`).
    written: AtomicU64,
    /// The generation known to be on disk; held while syncing.
    synced: Mutex<u64>,
    ids: AtomicU64,
    /// Signs a checkpoint every N records; `None` until `set_checkpoints`.
    checkpoints: std::sync::OnceLock<super::checkpoint::Checkpointer>,
    /// The last write to the file failed (disk full, file gone read-only…); cleared by the next
    /// write that works. Lets the pipeline refuse messages whose records would be lost.
    failing: std::sync::atomic::AtomicBool,
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
    /// `seq` of the last checkpoint record (0: none yet).
    last_checkpoint: u64,
    /// Gets a copy of every line as it is chained (`set_sink`).
    sink: Option<Arc<dyn super::sink::RecordSink>>,
}

impl Chain {
    /// The line queued from `start` is complete: hash it into `prev`, end it. Returns the
    /// queue's length.
    fn link(&mut self, start: usize) -> usize {
        let digest = Sha256::digest(&self.queue[start..]);
        if let Some(sink) = &self.sink {
            sink.line(&self.queue[start..]);
        }
        self.prev.clear();
        push_hex(&mut self.prev, &digest);
        self.queue.push(b'\n');
        self.queue.len()
    }
}

thread_local! {
    /// Each thread's buffer for serialising a record before it takes the chain lock.
    static BODY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Sink {
    /// The queue swapped out of `Chain`, being written; empty (with its capacity) in between.
    spare: Vec<u8>,
}

impl AuditLog {
    /// Create the audit directory if needed and open a new file for this process.
    pub fn open(dir: &Path, server: &str, fsync: Fsync) -> io::Result<Arc<AuditLog>> {
        fs::create_dir_all(dir)?;
        let safe = crate::fsutil::safe_name(server, &['-', '_'], '_');
        let name = format!(
            "{}-{}-{}.jsonl",
            timefmt::compact(SystemTime::now()),
            safe,
            std::process::id()
        );
        Self::open_file(&dir.join(name), fsync)
    }

    /// Open (append to) a specific file, continuing its chain if it already has lines.
    /// A torn last line (a crash mid-write) is first moved aside (`torn.rs`) and the move is
    /// recorded as an `audit.recovered` event, so the chain goes on from the last whole line.
    pub fn open_file(path: &Path, fsync: Fsync) -> io::Result<Arc<AuditLog>> {
        // Only a regular file has a chain to continue (a device such as /dev/full reads forever).
        let regular = fs::metadata(path).map_or(true, |m| m.is_file());
        let read = if regular {
            fs::read(path)
        } else {
            Ok(Vec::new())
        };
        let (seq, prev, recovered) = match read {
            Ok(bytes) => {
                let recovered = super::torn::recover(path, &bytes)?;
                let (seq, prev) = last_link(&bytes);
                (seq, prev, recovered)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, GENESIS.to_owned(), None),
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let log = Self::with_file(path, fsync, file, seq, prev);
        if let Some(r) = recovered {
            log.write_durable(recovery_record(&r))?;
        }
        Ok(log)
    }

    fn with_file(path: &Path, fsync: Fsync, file: File, seq: u64, prev: String) -> Arc<AuditLog> {
        Arc::new(AuditLog {
            path: path.to_owned(),
            fsync,
            chain: Mutex::new(Chain {
                seq,
                prev,
                queue: Vec::with_capacity(WRITE_AT + 4096),
                clock: Timestamps::default(),
                ts: String::with_capacity(32),
                last_checkpoint: seq,
                sink: None,
            }),
            sink: Mutex::new(Sink {
                spare: Vec::with_capacity(WRITE_AT + 4096),
            }),
            file,
            written: AtomicU64::new(0),
            synced: Mutex::new(0),
            ids: AtomicU64::new(1),
            checkpoints: std::sync::OnceLock::new(),
            failing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether every record is synced to disk as it is written (`fsync = "always"`): writing one
    /// then blocks on the disk.
    pub fn syncs_every_record(&self) -> bool {
        self.fsync == Fsync::Always
    }

    /// False while writes to the file fail.
    pub fn healthy(&self) -> bool {
        !self.failing.load(Ordering::Acquire)
    }

    /// A fresh audit id for a message of `session`, quoted in error responses before the record
    /// itself is written.
    pub fn next_audit_id(&self, session: &str) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(session.len() + 21);
        id.push_str(session);
        id.push('-');
        let _ = write!(id, "{n}");
        id
    }

    // A panic while holding either lock leaves consistent state (each queued line is whole).
    fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
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
        // Everything after the chain fields (`v`, `seq`, `ts`, `prev` come first) is serialised
        // before the lock is taken: the lock covers only the head, the hash and the copy.
        rec.seq = 0;
        rec.ts.clear();
        rec.prev.clear();
        let queued = BODY.with(|cell| -> io::Result<usize> {
            let mut body = cell.borrow_mut();
            body.clear();
            serde_json::to_writer(&mut *body, &rec).map_err(io::Error::other)?;
            let mut head = Vec::with_capacity(48);
            head.extend_from_slice(b"{\"v\":");
            push_decimal(&mut head, u64::from(rec.v));
            head.extend_from_slice(b",\"seq\":0,\"ts\":\"\",\"prev\":\"\",");
            let queued = match body.strip_prefix(head.as_slice()) {
                Some(tail) => self.chain_line(rec.v, tail),
                // Not the field order this relies on: serialise the whole record under the lock.
                None => self.chain_record(&mut rec)?,
            };
            if body.capacity() > WRITE_AT {
                *body = Vec::new();
            }
            Ok(queued)
        })?;
        drop(rec);
        if sync {
            return self.write_out(true);
        }
        if queued >= WRITE_AT {
            // Hand the queue to the file now, unless someone else is writing (then they, or
            // the flusher, will) and the queue is not yet too long.
            let sink = match self.sink.try_lock() {
                Ok(s) => Some(s),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) if queued >= QUEUE_MAX => Some(self.sink()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut sink) = sink {
                self.write_queue(&mut sink)?;
            }
        }
        Ok(())
    }

    /// Queue one line: the chain fields, then `tail` (the rest of the serialised record, from
    /// the first field after `prev`). Returns the queue's length.
    fn chain_line(&self, v: u32, tail: &[u8]) -> usize {
        let mut guard = self.chain();
        let chain = &mut *guard;
        chain.seq += 1;
        chain.clock.format(SystemTime::now(), &mut chain.ts);
        let q = &mut chain.queue;
        let start = q.len();
        q.extend_from_slice(b"{\"v\":");
        push_decimal(q, u64::from(v));
        q.extend_from_slice(b",\"seq\":");
        push_decimal(q, chain.seq);
        q.extend_from_slice(b",\"ts\":\"");
        q.extend_from_slice(chain.ts.as_bytes());
        q.extend_from_slice(b"\",\"prev\":\"");
        q.extend_from_slice(chain.prev.as_bytes());
        q.extend_from_slice(b"\",");
        q.extend_from_slice(tail);
        chain.link(start);
        self.maybe_checkpoint(chain, false)
    }

    /// Copy every line chained from now on to `sink` (OTLP export).
    pub fn set_sink(&self, sink: Arc<dyn super::sink::RecordSink>) {
        self.chain().sink = Some(sink);
    }

    /// Sign checkpoints with `key` every `every` records from now on (once per log).
    pub fn set_checkpoints(&self, key: ed25519_dalek::SigningKey, every: u64) {
        let _ = self
            .checkpoints
            .set(super::checkpoint::Checkpointer::new(key, every));
    }

    /// Queue a checkpoint record when one is due (or `force`d and records came since the last).
    /// Returns the queue's length.
    fn maybe_checkpoint(&self, chain: &mut Chain, force: bool) -> usize {
        let Some(cp) = self.checkpoints.get() else {
            return chain.queue.len();
        };
        let due = chain.seq % cp.every == 0 || (force && chain.seq > chain.last_checkpoint);
        if !due || chain.seq == chain.last_checkpoint {
            return chain.queue.len();
        }
        let mut rec = Record::new("", "", super::Direction::Proxy, 0);
        rec.event = "checkpoint".into();
        rec.decision = super::Decision::Allow;
        rec.seq = chain.seq + 1;
        chain.clock.format(SystemTime::now(), &mut rec.ts);
        rec.prev = chain.prev.clone();
        rec.detail = Some(cp.detail(rec.seq, &rec.prev));
        let start = chain.queue.len();
        if serde_json::to_writer(&mut chain.queue, &rec).is_err() {
            chain.queue.truncate(start);
            return chain.queue.len();
        }
        chain.seq += 1;
        chain.last_checkpoint = chain.seq;
        chain.link(start)
    }

    /// Append a checkpoint now if records came since the last one (on close, and periodically).
    pub fn checkpoint_now(&self) {
        let mut chain = self.chain();
        self.maybe_checkpoint(&mut chain, true);
    }

    /// Queue one record serialised whole under the lock (the general path).
    fn chain_record(&self, rec: &mut Record) -> io::Result<usize> {
        let mut guard = self.chain();
        let chain = &mut *guard;
        rec.seq = chain.seq + 1;
        chain.clock.format(SystemTime::now(), &mut chain.ts);
        // `ts` and `prev` are lent to the record for serialisation, then taken back.
        std::mem::swap(&mut rec.ts, &mut chain.ts);
        std::mem::swap(&mut rec.prev, &mut chain.prev);
        let start = chain.queue.len();
        let serialised = serde_json::to_writer(&mut chain.queue, &*rec);
        std::mem::swap(&mut rec.ts, &mut chain.ts);
        std::mem::swap(&mut rec.prev, &mut chain.prev);
        if let Err(e) = serialised {
            chain.queue.truncate(start);
            return Err(io::Error::other(e));
        }
        chain.seq += 1;
        chain.link(start);
        Ok(self.maybe_checkpoint(chain, false))
    }

    /// Swap the queue out (under the chain lock, briefly) and write it (under the sink lock).
    fn write_queue(&self, sink: &mut Sink) -> io::Result<()> {
        std::mem::swap(&mut self.chain().queue, &mut sink.spare);
        if sink.spare.is_empty() {
            return Ok(());
        }
        let written = (&self.file).write_all(&sink.spare);
        if written.is_err() && !self.failing.swap(true, Ordering::AcqRel) {
            eprintln!(
                "mcp-warden: cannot write the audit trail {}: {}; messages are refused until it works again (audit.on_failure)",
                self.path.display(),
                written.as_ref().err().map(ToString::to_string).unwrap_or_default()
            );
        } else if written.is_ok() {
            self.failing.store(false, Ordering::Release);
        }
        sink.spare.clear();
        if sink.spare.capacity() > QUEUE_MAX {
            sink.spare = Vec::with_capacity(WRITE_AT + 4096);
        }
        self.written.fetch_add(1, Ordering::Release);
        written
    }

    /// Write everything queued so far; with `sync`, make it durable too (one sync covers every
    /// write done before it started: concurrent durable records share it).
    fn write_out(&self, sync: bool) -> io::Result<()> {
        let mine = {
            let mut sink = self.sink();
            self.write_queue(&mut sink)?;
            self.written.load(Ordering::Acquire)
        };
        if sync {
            let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
            if *synced < mine {
                let upto = self.written.load(Ordering::Acquire);
                self.file.sync_data()?;
                *synced = upto;
            }
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
            .spawn(move || {
                let mut ticks = 0u64;
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    ticks += 1;
                    match weak.upgrade() {
                        Some(log) => {
                            // Besides every N records, a checkpoint at least once a minute while
                            // records arrive, so a quiet proxy's tail is not left unsigned.
                            if ticks % 600 == 0 {
                                log.checkpoint_now();
                            }
                            if let Err(e) = log.flush() {
                                tracing::error!("audit flush failed: {e}");
                            }
                        }
                        None => return,
                    }
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

fn push_decimal(out: &mut impl Extend<u8>, mut n: u64) {
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
    out.extend(digits[i..].iter().copied());
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // The tail after the last periodic checkpoint is signed too.
        self.checkpoint_now();
        let _ = self.flush();
    }
}

/// The record that says a torn tail was cut off: how many bytes, and where they were kept.
fn recovery_record(r: &super::torn::Recovered) -> Record {
    let mut rec = Record::new("", "", super::Direction::Proxy, r.torn_bytes);
    rec.event = "audit.recovered".into();
    rec.decision = super::Decision::Rewrite;
    rec.rule = Some("audit_torn_tail".into());
    rec.reason = Some(format!(
        "the audit file ended in a torn line ({} bytes without a newline, e.g. after a crash); \
         it was moved to {} and the chain continues from the last complete line",
        r.torn_bytes,
        r.quarantine.display()
    ));
    rec.alert = true;
    rec.detail = Some(serde_json::json!({
        "torn_bytes": r.torn_bytes,
        "quarantine": r.quarantine.display().to_string(),
    }));
    rec
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
        let mut s = Vec::new();
        push_decimal(&mut s, u64::MAX);
        assert_eq!(s, u64::MAX.to_string().as_bytes());
        let mut h = String::new();
        push_hex(&mut h, &[0x00, 0xab, 0x7f]);
        assert_eq!(h, "00ab7f");
    }

    /// Records with every kind of field filled in, some with characters JSON escapes.
    fn record(i: u64) -> Record {
        use crate::audit::{Decision, Direction};
        let mut r = Record::new("s\"1", "srv", Direction::ClientToServer, i);
        r.audit_id = format!("s-{i}");
        r.reason = Some("x\u{2028}\n".repeat(40));
        r.decision = Decision::Allow;
        r.latency_us = Some(i * 7);
        if i % 3 == 0 {
            r.era = Some("2025-06-18");
            r.method = Some("tools/call".into());
            r.id = Some(i.to_string());
            r.alert = true;
            r.policy_version = Some("p1".into());
            r.detail = Some(serde_json::json!({"k": [1, "\u{0}"], "i": i}));
        }
        if i == 5 {
            r.v = 12;
        }
        r
    }

    #[test]
    fn chain_survives_queue_writes_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let log = AuditLog::open_file(&path, Fsync::Batch).unwrap();
        // Enough records to pass WRITE_AT several times, some durable.
        for i in 0..2000u64 {
            let r = record(i);
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
            // Byte for byte what serde writes for the record with its chain fields filled in.
            let mut want = record(n - 1);
            want.seq = n;
            want.ts = v["ts"].as_str().unwrap().to_owned();
            want.prev = prev.clone();
            assert_eq!(
                String::from_utf8_lossy(line),
                serde_json::to_string(&want).unwrap()
            );
            prev = hex::encode(Sha256::digest(line));
        }
        assert_eq!((n, prev.clone()), (2000, head));
        let again = AuditLog::open_file(&path, Fsync::Never).unwrap();
        assert_eq!(again.head(), (2000, prev));
    }
}
