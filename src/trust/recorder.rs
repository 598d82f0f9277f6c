//! The hot-path handle: record observations in memory, flush them in batches, read a cached score.
//!
//! `record` never touches the disk: a tool call costs a mutex and a map increment. Batches reach
//! the shared file on `flush` (every second from `flusher.rs`'s thread, an explicit call, or
//! drop). `score` serves a cached report and re-reads the file at most every `cache_secs`, so
//! what other processes recorded shows up within seconds; this process's unflushed observations
//! are merged in at refresh, so its own decisions never wait on a flush.
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::buckets::History;
use super::events::{Event, Observation};
use super::report::TrustReport;
use super::score::compute;
use super::store::TrustStore;

/// Unix seconds now. Injected so tests drive decay and windows without sleeping.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

pub const DEFAULT_FLUSH_SECS: u64 = 1;
pub const DEFAULT_CACHE_SECS: u64 = 5;

/// One server's recorder; share it behind an `Arc` across sessions of that server.
pub struct TrustRecorder {
    store: TrustStore,
    server: String,
    clock: Clock,
    flush_secs: u64,
    cache_secs: u64,
    state: Mutex<State>,
    /// Serialises flushes within the process so the cached file content only moves forward.
    flushing: Mutex<()>,
}

struct State {
    pending: History,
    last_flush: u64,
    /// While the upstream is up: since when uptime has not been credited yet.
    up_since: Option<u64>,
    /// Last file content seen and when it was read; `None` until the first read.
    persisted: Option<(u64, History)>,
    report: Option<TrustReport>,
    last_error: Option<String>,
}

impl TrustRecorder {
    pub fn new(store: TrustStore, server: &str, clock: Clock) -> Self {
        let now = clock();
        TrustRecorder {
            store,
            server: server.to_string(),
            clock,
            flush_secs: DEFAULT_FLUSH_SECS,
            cache_secs: DEFAULT_CACHE_SECS,
            state: Mutex::new(State {
                pending: History::new(server),
                last_flush: now,
                up_since: None,
                persisted: None,
                report: None,
                last_error: None,
            }),
            flushing: Mutex::new(()),
        }
    }

    /// Flush at most every `flush_secs` (via `flush_if_due`), re-read at most every `cache_secs`.
    pub fn with_intervals(mut self, flush_secs: u64, cache_secs: u64) -> Self {
        self.flush_secs = flush_secs;
        self.cache_secs = cache_secs;
        self
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Records an observation stamped with the clock. No I/O.
    pub fn record(&self, obs: Observation) {
        self.record_at(Event::new((self.clock)(), obs));
    }

    /// Records an observation with its own timestamp. A successful upstream start also starts the
    /// uptime meter, credited at each flush until `upstream_stopped`.
    pub fn record_at(&self, event: Event) {
        let mut st = self.lock();
        st.pending.apply(&event);
        if event.obs == (Observation::UpstreamStart { ok: true }) {
            credit_uptime(&mut st, event.at);
            st.up_since = Some(event.at);
        }
    }

    /// The upstream exited: credit the uptime so far and stop the meter.
    pub fn upstream_stopped(&self) {
        let now = (self.clock)();
        let mut st = self.lock();
        credit_uptime(&mut st, now);
        st.up_since = None;
    }

    /// The current score (0..1), from the cached report.
    pub fn score(&self) -> f64 {
        self.with_report(|r| r.score)
    }

    /// The current breakdown, from the cache.
    pub fn report(&self) -> TrustReport {
        self.with_report(TrustReport::clone)
    }

    /// The last flush or read error, for the caller to log; cleared by the next success.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Writes the pending batch now. On failure the batch stays pending for the next try.
    pub fn flush(&self) -> io::Result<()> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let now = (self.clock)();
        let batch = {
            let mut st = self.lock();
            credit_uptime(&mut st, now);
            st.last_flush = now;
            std::mem::replace(&mut st.pending, History::new(&self.server))
        };
        if batch.is_empty() {
            return Ok(());
        }
        // The disk work happens without the state lock: `record` never waits on a flush.
        let result = self.store.update(&self.server, &batch, now);
        let mut st = self.lock();
        match result {
            Ok(merged) => {
                st.persisted = Some((now, merged));
                st.report = None;
                st.last_error = None;
                Ok(())
            }
            Err(e) => {
                st.pending.merge(&batch);
                st.last_error = Some(format!("trust flush for {}: {e}", self.server));
                Err(e)
            }
        }
    }

    /// Flushes when `flush_secs` have passed since the last flush; for callers that tick.
    pub fn flush_if_due(&self) -> io::Result<()> {
        let due = {
            let st = self.lock();
            (self.clock)().saturating_sub(st.last_flush) >= self.flush_secs
        };
        if due {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn with_report<T>(&self, f: impl FnOnce(&TrustReport) -> T) -> T {
        let now = (self.clock)();
        let stale = {
            let st = self.lock();
            st.persisted
                .as_ref()
                .is_none_or(|(at, _)| now.saturating_sub(*at) >= self.cache_secs)
        };
        // Read outside the state lock. Skip the read while a flush is running: the file would not
        // yet hold the batch already taken out of `pending` (an undercount), and the flush
        // installs the merged content itself when it ends.
        let fresh = if stale {
            let flush_idle = match self.flushing.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            flush_idle.map(|_guard| self.store.load(&self.server))
        } else {
            None
        };
        let refreshed = fresh.is_some();
        let mut st = self.lock();
        match fresh {
            Some(Ok(h)) => {
                st.persisted = Some((now, h));
                st.report = None;
            }
            Some(Err(e)) => {
                // Keep the last good content (stale beats invented) and retry after cache_secs.
                let keep = st
                    .persisted
                    .take()
                    .map_or_else(|| History::new(&self.server), |(_, h)| h);
                st.persisted = Some((now, keep));
                st.last_error = Some(format!("trust read for {}: {e}", self.server));
            }
            None => {}
        }
        if st.report.is_none() || refreshed {
            let mut merged = st
                .persisted
                .as_ref()
                .map_or_else(|| History::new(&self.server), |(_, h)| h.clone());
            merged.merge(&st.pending);
            st.report = Some(compute(&merged, now));
        }
        match st.report.as_ref() {
            Some(r) => f(r),
            None => f(&compute(&History::new(&self.server), now)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counts that are still counts: go on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn credit_uptime(st: &mut State, now: u64) {
    if let Some(since) = st.up_since {
        let secs = now.saturating_sub(since);
        if secs > 0 {
            st.pending
                .apply(&Event::new(now, Observation::Uptime { secs }));
            st.up_since = Some(now);
        }
    }
}

impl Drop for TrustRecorder {
    /// Best effort: a process that exits cleanly loses nothing; `kill -9` loses at most one batch.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::buckets::Counter;
    use std::sync::atomic::{AtomicU64, Ordering};

    const T0: u64 = 1_780_000_000;

    fn manual_clock(start: u64) -> (Arc<AtomicU64>, Clock) {
        let t = Arc::new(AtomicU64::new(start));
        let c = Arc::clone(&t);
        (t, Arc::new(move || c.load(Ordering::SeqCst)))
    }

    #[test]
    fn record_is_in_memory_until_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        let (_, clock) = manual_clock(T0);
        let rec = TrustRecorder::new(store.clone(), "fs", clock);
        rec.record(Observation::CallOk);
        rec.record(Observation::CallError);
        assert!(!store.exists("fs"));
        rec.flush().unwrap();
        let h = store.load("fs").unwrap();
        assert_eq!(h.total(Counter::CallsOk, T0), 1);
        assert_eq!(h.total(Counter::CallsError, T0), 1);
        rec.flush().unwrap();
        assert_eq!(
            store.load("fs").unwrap(),
            h,
            "an empty batch writes nothing new"
        );
    }

    #[test]
    fn flush_if_due_waits_for_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        let (t, clock) = manual_clock(T0);
        let rec = TrustRecorder::new(store.clone(), "fs", clock).with_intervals(1, 5);
        rec.record(Observation::CallOk);
        rec.flush_if_due().unwrap();
        assert!(!store.exists("fs"));
        t.fetch_add(1, Ordering::SeqCst);
        rec.flush_if_due().unwrap();
        assert!(store.exists("fs"));
    }

    #[test]
    fn score_is_cached_and_sees_other_writers_after_the_cache_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        let (t, clock) = manual_clock(T0);
        let rec = TrustRecorder::new(store.clone(), "fs", Arc::clone(&clock)).with_intervals(1, 5);
        assert_eq!(rec.score(), 0.5);
        // Another process records failures.
        let other = TrustRecorder::new(store.clone(), "fs", clock);
        for _ in 0..20 {
            other.record(Observation::CallError);
            other.record(Observation::CallDenied);
        }
        other.flush().unwrap();
        assert_eq!(rec.score(), 0.5, "served from the cache");
        t.fetch_add(5, Ordering::SeqCst);
        assert!(rec.score() < 0.5, "refreshed from the file");
    }

    #[test]
    fn own_unflushed_observations_count_at_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let (t, clock) = manual_clock(T0);
        let rec = TrustRecorder::new(TrustStore::new(dir.path()), "fs", clock).with_intervals(1, 2);
        assert_eq!(rec.report().factors[4].value, None);
        rec.record(Observation::CallDenied);
        assert_eq!(
            rec.report().factors[4].value,
            None,
            "cached until cache_secs pass"
        );
        t.fetch_add(2, Ordering::SeqCst);
        let compliance = &rec.report().factors[4];
        assert_eq!(compliance.evidence["denied"], 1);
        assert!(compliance.value < Some(0.5));
    }

    #[test]
    fn uptime_is_credited_between_start_and_stop() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        let (t, clock) = manual_clock(T0);
        let rec = TrustRecorder::new(store.clone(), "fs", clock);
        rec.record(Observation::UpstreamStart { ok: true });
        t.fetch_add(100, Ordering::SeqCst);
        rec.flush().unwrap();
        t.fetch_add(50, Ordering::SeqCst);
        rec.upstream_stopped();
        t.fetch_add(1_000, Ordering::SeqCst);
        rec.flush().unwrap();
        assert_eq!(
            store
                .load("fs")
                .unwrap()
                .total(Counter::UptimeSecs, T0 + 2_000),
            150
        );
    }

    #[test]
    fn a_failed_flush_keeps_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("trust");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let (_, clock) = manual_clock(T0);
        let rec = TrustRecorder::new(TrustStore::new(dir.path()), "fs", clock);
        rec.record(Observation::CallOk);
        assert!(rec.flush().is_err());
        assert!(rec.last_error().is_some());
        std::fs::remove_file(&blocker).unwrap();
        rec.flush().unwrap();
        assert!(rec.last_error().is_none());
        let h = TrustStore::new(dir.path()).load("fs").unwrap();
        assert_eq!(h.total(Counter::CallsOk, T0), 1);
    }

    #[test]
    fn drop_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path());
        {
            let rec = TrustRecorder::new(store.clone(), "dropped", system_clock());
            rec.record(Observation::Session);
        }
        assert!(store.exists("dropped"));
    }
}
