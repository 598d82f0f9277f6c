//! The hand-off between the audit log and the exporter: a bounded queue that never waits.
//! A full queue (collector slow or down) drops the copy, never the record: the file has it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

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

pub struct LineQueue {
    tx: SyncSender<Vec<u8>>,
    drops: Arc<Drops>,
}

impl LineQueue {
    /// A sender for waking the worker (an empty line) without closing the queue.
    pub fn waker(&self) -> SyncSender<Vec<u8>> {
        self.tx.clone()
    }
}

pub fn bounded(cap: usize, drops: Arc<Drops>) -> (LineQueue, Receiver<Vec<u8>>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(cap);
    (LineQueue { tx, drops }, rx)
}

impl RecordSink for LineQueue {
    fn line(&self, line: &[u8]) {
        match self.tx.try_send(line.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.drops.queue_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_counts_and_never_blocks() {
        let drops = Arc::new(Drops::default());
        let (q, rx) = bounded(2, drops.clone());
        for _ in 0..5 {
            q.line(b"{}");
        }
        assert_eq!(drops.take(), (3, 0));
        assert_eq!(rx.try_iter().count(), 2);
        assert_eq!(drops.take(), (0, 0));
    }
}
