//! The hand-off between the audit log and the exporter: a bounded buffer that never waits.
//! A full buffer (collector slow or down) drops the copy, never the record: the file has it.
//!
//! Lines are appended to one shared buffer under a short lock and the export thread takes
//! the whole buffer at once. The bell rings only when a batch is full (or at the stop), not
//! per line: waking another thread for every audit line costs a system call and a context
//! switch per message, which on a two-core machine showed in the relay's own throughput.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

use crate::audit::RecordSink;

/// Lines the exporter lost, by cause; read and reset by the drop report.
#[derive(Default, Debug)]
pub struct Drops {
    pub queue_full: AtomicU64,
    pub export_failed: AtomicU64,
}

impl Drops {
    /// (queue full, export failed) since the last call.
    pub fn take(&self) -> (u64, u64) {
        (
            self.queue_full.swap(0, Ordering::Relaxed),
            self.export_failed.swap(0, Ordering::Relaxed),
        )
    }
}

#[derive(Default)]
struct Pending {
    /// Whole lines, each ended by `\n` (an audit line never holds a raw newline).
    buf: Vec<u8>,
    count: usize,
    stop: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    bell: Condvar,
    drops: Arc<Drops>,
    cap: usize,
    batch: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The audit log's side: copies lines in.
pub struct LineQueue(Arc<Shared>);

/// The export thread's side: takes what has gathered.
pub struct Lines(Arc<Shared>);

/// Ends the export thread's waiting (`Telemetry::shutdown`). Weak, so that the log's side
/// going away is still seen as the end.
#[derive(Clone)]
pub struct Stopper(Weak<Shared>);

/// What one `Lines::take` returned.
pub struct Taken {
    pub buf: Vec<u8>,
    /// The stop was asked for, or the audit log (the only writer) is gone: this is the last.
    pub last: bool,
}

impl Taken {
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.buf.split(|b| *b == b'\n').filter(|l| !l.is_empty())
    }
}

/// At most `cap` lines wait; the export thread is woken when `batch` have gathered.
pub fn bounded(cap: usize, batch: usize, drops: Arc<Drops>) -> (LineQueue, Lines) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        bell: Condvar::new(),
        drops,
        cap: cap.max(1),
        batch: batch.clamp(1, cap.max(1)),
    });
    (LineQueue(shared.clone()), Lines(shared))
}

impl LineQueue {
    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::downgrade(&self.0))
    }
}

impl Stopper {
    pub fn stop(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.lock().stop = true;
            shared.bell.notify_all();
        }
    }
}

impl RecordSink for LineQueue {
    fn line(&self, line: &[u8]) {
        let mut p = self.0.lock();
        if p.count >= self.0.cap {
            drop(p);
            self.0.drops.queue_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        p.buf.extend_from_slice(line);
        p.buf.push(b'\n');
        p.count += 1;
        if p.count == self.0.batch {
            drop(p);
            self.0.bell.notify_one();
        }
    }
}

impl Lines {
    /// Wait until a batch has gathered, the stop, or `until`; then take every line waiting.
    /// `spare` (an emptied earlier buffer) is swapped in so its capacity is reused.
    pub fn take(&self, until: Instant, spare: Vec<u8>) -> Taken {
        let mut p = self.0.lock();
        loop {
            // Only this side left: the log that wrote lines is gone.
            let orphaned = Arc::strong_count(&self.0) == 1;
            if p.stop || orphaned || p.count >= self.0.batch {
                break;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            p = self
                .0
                .bell
                .wait_timeout(p, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let mut buf = spare;
        buf.clear();
        std::mem::swap(&mut buf, &mut p.buf);
        p.count = 0;
        let last = p.stop || Arc::strong_count(&self.0) == 1;
        Taken { buf, last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_queue_counts_and_never_blocks() {
        let drops = Arc::new(Drops::default());
        let (q, rx) = bounded(2, 2, drops.clone());
        for _ in 0..5 {
            q.line(b"{}");
        }
        assert_eq!(drops.take(), (3, 0));
        let got = rx.take(Instant::now(), Vec::new());
        assert_eq!(got.lines().count(), 2);
        assert!(!got.last);
        assert_eq!(drops.take(), (0, 0));
    }

    #[test]
    fn the_taker_waits_for_a_batch_the_deadline_or_the_stop() {
        let (q, rx) = bounded(100, 3, Arc::new(Drops::default()));
        q.line(b"a");
        // One line, no batch yet: the deadline ends the wait.
        let t = Instant::now();
        let got = rx.take(t + Duration::from_millis(50), Vec::new());
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(got.lines().collect::<Vec<_>>(), vec![&b"a"[..]]);
        // A full batch wakes it long before the deadline.
        let far = Instant::now() + Duration::from_secs(30);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            for l in [&b"b"[..], b"c", b"d"] {
                q.line(l);
            }
            q
        });
        let got = rx.take(far, got.buf);
        assert_eq!(got.lines().count(), 3);
        let q = writer.join().unwrap();
        // The stop wakes it too, and says it is the last take.
        let stopper = q.stopper();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            stopper.stop();
        });
        let got = rx.take(far, got.buf);
        assert!(got.last);
        assert!(Instant::now() < far);
        drop(q);
    }

    #[test]
    fn the_log_gone_ends_the_wait() {
        let (q, rx) = bounded(100, 3, Arc::new(Drops::default()));
        let stopper = q.stopper();
        q.line(b"a");
        drop(q);
        let far = Instant::now() + Duration::from_secs(30);
        let got = rx.take(far, Vec::new());
        assert!(got.last, "a stopper alone does not keep the queue open");
        assert_eq!(got.lines().count(), 1);
        assert!(Instant::now() < far);
        stopper.stop();
    }
}
