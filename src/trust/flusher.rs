//! A plain thread that flushes a `TrustRecorder` on a timer, so batches reach the shared file
//! within a second without any runtime and without the hot path ever doing the I/O.

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::recorder::TrustRecorder;

/// Stops the background flusher when dropped.
pub struct Flusher {
    /// Dropping the only sender disconnects the channel, which wakes and ends the thread at once.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Flushes `recorder` every `every` on a plain thread (no runtime needed). The thread holds only a
/// weak reference: it never keeps a recorder alive, and it ends when the `Flusher` is dropped.
pub fn spawn_flusher(recorder: &Arc<TrustRecorder>, every: Duration) -> io::Result<Flusher> {
    let weak: Weak<TrustRecorder> = Arc::downgrade(recorder);
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("trust-flush".into())
        .spawn(move || loop {
            match rx.recv_timeout(every) {
                Err(RecvTimeoutError::Timeout) => match weak.upgrade() {
                    // Errors stay in `last_error` and the batch stays pending for the next tick.
                    Some(r) => {
                        let _ = r.flush();
                    }
                    None => return,
                },
                _ => return,
            }
        })?;
    Ok(Flusher {
        stop: Some(tx),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::events::Observation;
    use crate::trust::recorder::system_clock;
    use crate::trust::store::TrustStore;

    #[test]
    fn flushes_on_its_own_and_stops_promptly() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        let rec = Arc::new(TrustRecorder::new(store.clone(), "ticked", system_clock()));
        let flusher = spawn_flusher(&rec, Duration::from_millis(20)).unwrap();
        rec.record(Observation::Session);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !store.exists("ticked") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = std::time::Instant::now();
        flusher.stop();
        assert!(store.exists("ticked"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "stop does not wait for a tick"
        );
    }

    #[test]
    fn never_keeps_the_recorder_alive() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(TrustRecorder::new(
            TrustStore::new(dir.path()),
            "x",
            system_clock(),
        ));
        let flusher = spawn_flusher(&rec, Duration::from_millis(5)).unwrap();
        let weak = Arc::downgrade(&rec);
        drop(rec);
        std::thread::sleep(Duration::from_millis(30));
        assert!(weak.upgrade().is_none());
        drop(flusher);
    }
}
