//! One place that acts on a verdict. Every transport (`wrap`'s relay, `serve`'s POST, modern and
//! legacy SSE paths, the stdio and HTTP upstreams) hands its `Outcome` here and gets back what
//! goes on to the peer and what goes back to the sender, plus the audit record sealed in a guard:
//!
//! - the record is written exactly once, when the guard is dropped — after the transport acted on
//!   the verdict, or on any early return: it cannot be skipped;
//! - a durable record (high-risk call, or a failing audit sink) is on disk before anything moves;
//!   when it cannot be written the call is refused (-32603) instead: fail closed;
//! - an approval hold is written at once and waited out one way (`wait_hold`), off the hot path
//!   (for async transports, `settle_off_workers` runs the checks and the wait on the blocking pool);
//! - a sampling request travels with its guard to the thread that asks the backend.

use std::sync::Arc;
use std::time::Instant;

use super::hold::Held;
use super::sampling_step::Sampling;
use super::{Outcome, Pipeline, Routing, Verdict};
use crate::audit::{Direction, Record};
use crate::errors::{Rejection, APPROVAL_FAILED};

/// A message's audit record, written when the guard is dropped.
pub struct RecordGuard {
    pipeline: Arc<Pipeline>,
    record: Option<Record>,
    started: Instant,
}

impl RecordGuard {
    pub fn new(pipeline: &Arc<Pipeline>, record: Record, started: Instant) -> RecordGuard {
        RecordGuard {
            pipeline: pipeline.clone(),
            record: Some(record),
            started,
        }
    }

    /// A guard with nothing left to write (the record went to disk first: durable).
    fn written(pipeline: &Arc<Pipeline>) -> RecordGuard {
        RecordGuard {
            pipeline: pipeline.clone(),
            record: None,
            started: Instant::now(),
        }
    }

    pub fn audit_id(&self) -> &str {
        self.record.as_ref().map_or("", |r| r.audit_id.as_str())
    }

    /// Hand the record on to a step that completes it (sampling); the guard is spent.
    fn take(mut self) -> Record {
        self.record
            .take()
            .unwrap_or_else(|| Record::new("", &self.pipeline.server, Direction::ServerToClient, 0))
    }
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        if let Some(r) = self.record.take() {
            self.pipeline.finish(r, self.started);
        }
    }
}

/// What goes on to the peer.
pub enum Onward {
    /// The bytes as they came in (forward original bytes).
    Original,
    /// Changed bytes (normalised, filtered, redacted, the passing part of a batch).
    Bytes(Vec<u8>),
}

/// What the transport does now. Drop it (or its `record`) once it acted.
pub struct Delivery {
    pub onward: Option<Onward>,
    /// The proxy's answer to the sender (an error, a refused batch element).
    pub back: Option<Vec<u8>>,
    pub record: RecordGuard,
    /// Which request it belongs to (`Outcome::routing`), for transports that route answers.
    pub routing: Routing,
}

impl Delivery {
    /// The bytes for the peer, given the original message.
    pub fn onward<'a>(&'a self, original: &'a [u8]) -> Option<&'a [u8]> {
        match self.onward.as_ref()? {
            Onward::Original => Some(original),
            Onward::Bytes(b) => Some(b),
        }
    }
}

/// A verdict, settled.
pub enum Settled {
    Act(Delivery),
    /// Held for approval: its record is written; wait it out with `wait_hold` (a thread of its
    /// own, or `settle_off_workers` from async code) and settle what that returns.
    Hold(Box<Held>),
    /// The inference backend answers: `run_sample` off the hot path, then settle that outcome.
    Sample(Box<Sampling>, RecordGuard),
}

/// Turn an outcome into what moves, its record sealed (or already on disk when durable).
pub fn settle(p: &Arc<Pipeline>, outcome: Outcome, started: Instant) -> Settled {
    let Outcome {
        verdict,
        record,
        routing,
    } = outcome;
    let (onward, back) = match verdict {
        Verdict::Hold(held) => {
            p.finish(record, started);
            return Settled::Hold(held);
        }
        Verdict::Sample(job) => return Settled::Sample(job, RecordGuard::new(p, record, started)),
        Verdict::Forward => (Some(Onward::Original), None),
        Verdict::Rewrite(b) => (Some(Onward::Bytes(b)), None),
        Verdict::Answer(a) => (None, Some(a)),
        Verdict::Split { forward, answer } => (Some(Onward::Bytes(forward)), Some(answer)),
        Verdict::Drop => (None, None),
    };
    if onward.is_some() && record.durable {
        let id = record.id.clone();
        if let Err(e) = p.finish_durable(record, started) {
            // Fail closed: no durable record, no high-risk call.
            tracing::error!("audit write failed, refusing the call: {e}");
            return Settled::Act(Delivery {
                onward: None,
                back: p.audit_failure_answer(id.as_deref()),
                record: RecordGuard::written(p),
                routing: Routing::Session,
            });
        }
        return Settled::Act(Delivery {
            onward,
            back,
            record: RecordGuard::written(p),
            routing,
        });
    }
    Settled::Act(Delivery {
        onward,
        back,
        record: RecordGuard::new(p, record, started),
        routing,
    })
}

/// What waiting out a hold produced.
pub struct Waited {
    pub outcome: Outcome,
    /// Asked through the client: the proxy's withdrawal of its own question, for the client.
    pub withdraw: Option<Vec<u8>>,
}

/// Wait out an approval hold. Blocks until a decision, a timeout or a withdrawal: call it on a
/// thread of its own (`settle_off_workers` does, from async code).
pub fn wait_hold(p: &Pipeline, held: Held) -> Waited {
    let resolution = p.wait_for(&held);
    let withdraw = p.ask_abandoned(&held, &resolution);
    Waited {
        outcome: p.resolve_hold(held, resolution),
        withdraw,
    }
}

/// Ask the backend (blocks for up to its timeout); returns the outcome and when it started.
pub fn run_sample(p: &Pipeline, job: Sampling, record: RecordGuard) -> (Outcome, Instant) {
    let started = job.started;
    (p.run_sampling(job, record.take()), started)
}

/// `settle` for async transports that judged on the worker (the checks were cheap): a record
/// that must be durable is synced on the blocking pool, never on an async worker.
pub async fn settle_async(p: &Arc<Pipeline>, outcome: Outcome, started: Instant) -> Settled {
    if !outcome.record.durable {
        return settle(p, outcome, started);
    }
    let q = p.clone();
    match tokio::task::spawn_blocking(move || settle(&q, outcome, started)).await {
        Ok(s) => s,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// `wait_hold` on the blocking pool, for async transports that keep other messages flowing
/// meanwhile; a wait that cannot complete ends in -32014, never in a forward.
pub async fn wait_hold_async(p: &Arc<Pipeline>, held: Held) -> Waited {
    let (q, id) = (p.clone(), held.id.clone());
    match tokio::task::spawn_blocking(move || wait_hold(&q, held)).await {
        Ok(waited) => waited,
        Err(_) => Waited {
            outcome: p.wait_failed(&id),
            withdraw: None,
        },
    }
}

/// `run_sample` on the blocking pool, for async transports.
pub async fn run_sample_async(
    p: &Arc<Pipeline>,
    job: Sampling,
    record: RecordGuard,
) -> Option<(Outcome, Instant)> {
    let q = p.clone();
    tokio::task::spawn_blocking(move || run_sample(&q, job, record))
        .await
        .ok()
}

/// `settle` for async transports: `judge` (the pipeline's checks) and the settling run on the
/// blocking pool, never on an async worker — they may write approval tickets, update the pin
/// store (flock, fsync, rename) or sync a durable record — and a hold is waited out there too,
/// so the result is never `Hold`.
pub async fn settle_off_workers(
    p: &Arc<Pipeline>,
    judge: impl FnOnce(&Pipeline) -> Outcome + Send + 'static,
) -> Settled {
    let first = judge_off_workers(p, judge).await;
    wait_off_workers(p, first).await
}

/// The first half of `settle_off_workers`: the checks and the settling on the blocking pool, a
/// hold handed back as it is — for a transport that waits it out its own way (`serve` asking
/// the client on the call's own event stream), else `wait_off_workers`.
pub async fn judge_off_workers(
    p: &Arc<Pipeline>,
    judge: impl FnOnce(&Pipeline) -> Outcome + Send + 'static,
) -> Settled {
    let q = p.clone();
    let first = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let outcome = judge(&q);
        settle(&q, outcome, started)
    })
    .await;
    match first {
        Ok(s) => s,
        // The checks panicked: the same as if they had panicked here.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The second half of `settle_off_workers`: holds waited out on the blocking pool until what
/// is left is no hold.
pub async fn wait_off_workers(p: &Arc<Pipeline>, mut settled: Settled) -> Settled {
    loop {
        let held = match settled {
            Settled::Hold(held) => held,
            other => return other,
        };
        let (q, id) = (p.clone(), held.id.clone());
        let waited = tokio::task::spawn_blocking(move || {
            let outcome = wait_hold(&q, *held).outcome;
            settle(&q, outcome, Instant::now())
        })
        .await;
        settled = match waited {
            Ok(s) => s,
            // The wait itself failed: nothing was approved, so the call fails closed.
            Err(_) => settle(p, p.wait_failed(&id), Instant::now()),
        };
    }
}

impl Pipeline {
    /// The outcome of a hold whose wait could not complete: -32014, never forwarded.
    fn wait_failed(&self, id: &crate::codec::Id) -> Outcome {
        let session = self.session();
        let mut record = self.record(&session, Direction::ClientToServer, 0);
        drop(session);
        let r = Rejection::new(
            APPROVAL_FAILED,
            "approval.not_granted",
            "approval",
            "the approval wait failed; the call was not forwarded",
        );
        let answer = r.to_response(Some(id), &record.audit_id);
        super::deny(&mut record, &r);
        Outcome::new(Verdict::Answer(answer), record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, Fsync};
    use crate::codec::Limits;

    fn pipeline() -> (Arc<Pipeline>, std::path::PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let log = AuditLog::open_file(&path, Fsync::Never).unwrap();
        let p = Pipeline::new("t", Limits::default(), log, Arc::default());
        (Arc::new(p), path, dir)
    }

    fn lines(p: &Pipeline, path: &std::path::Path) -> usize {
        p.audit().flush().unwrap();
        std::fs::read_to_string(path).unwrap().lines().count()
    }

    const PING: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    /// The record is written once, when the transport is done with the delivery — also when
    /// it returns early without acting.
    #[test]
    fn the_record_is_written_exactly_once_on_drop() {
        let (p, path, _d) = pipeline();
        let before = lines(&p, &path);
        let Settled::Act(d) = settle(&p, p.from_client(PING), Instant::now()) else {
            panic!("a ping is acted on");
        };
        assert_eq!(d.onward(PING), Some(PING), "original bytes go on");
        assert_eq!(lines(&p, &path), before, "not before the transport acted");
        drop(d);
        assert_eq!(lines(&p, &path), before + 1);
        let Settled::Act(d) = settle(&p, p.from_client(b"{"), Instant::now()) else {
            panic!("a parse error is answered");
        };
        assert!(d.onward.is_none() && d.back.is_some());
        let early = |d: Delivery| -> Option<()> {
            d.onward.as_ref()?;
            Some(())
        };
        assert_eq!(early(d), None);
        assert_eq!(lines(&p, &path), before + 2);
    }

    /// A durable ping, settled: its record is on disk before the bytes move, and is
    /// not written twice.
    fn durable_first(p: &Arc<Pipeline>, path: &std::path::Path, settled: Settled, before: usize) {
        let Settled::Act(d) = settled else {
            panic!("acted on");
        };
        assert!(d.onward.is_some());
        assert_eq!(
            std::fs::read_to_string(path).unwrap().lines().count(),
            before + 1
        );
        drop(d);
        assert_eq!(lines(p, path), before + 1);
    }

    fn durable_ping(p: &Pipeline, id: u32) -> Outcome {
        let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        let mut outcome = p.from_client(line.as_bytes());
        outcome.record.durable = true;
        outcome
    }

    #[test]
    fn a_durable_record_is_on_disk_before_anything_moves() {
        let (p, path, _d) = pipeline();
        let before = lines(&p, &path);
        let settled = settle(&p, durable_ping(&p, 2), Instant::now());
        durable_first(&p, &path, settled, before);
    }

    /// The same from async code that judged on the worker: the sync happens off it.
    #[tokio::test(flavor = "current_thread")]
    async fn settle_async_writes_a_durable_record_first() {
        let (p, path, _d) = pipeline();
        let before = lines(&p, &path);
        let settled = settle_async(&p, durable_ping(&p, 3), Instant::now()).await;
        durable_first(&p, &path, settled, before);
    }

    /// Async transports run the checks (approval tickets, pin store, durable records) on the
    /// blocking pool: the worker that accepts connections never waits on a disk.
    #[tokio::test(flavor = "current_thread")]
    async fn async_transports_judge_off_the_async_worker() {
        let (p, _path, _d) = pipeline();
        let worker = std::thread::current().id();
        let seen = Arc::new(std::sync::Mutex::new(None));
        let judged_on = seen.clone();
        let settled = settle_off_workers(&p, move |p| {
            *judged_on.lock().unwrap() = Some(std::thread::current().id());
            p.from_client(PING)
        })
        .await;
        assert!(matches!(settled, Settled::Act(_)));
        assert_ne!(seen.lock().unwrap().unwrap(), worker);
    }
}
