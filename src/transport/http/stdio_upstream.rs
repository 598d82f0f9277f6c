//! One HTTP session (or one modern-era request) bound to its own stdio server process, run as
//! one task on `serve`'s runtime rather than on threads of its own: a modern request starts a
//! process, and three threads per process (per request) cost more than the request.
//!
//! The task joins three futures:
//! - the writer feeds the child's stdin from a bounded queue ([`STDIN_QUEUE`]): a server that
//!   stops reading gets no more (`SendError::Full`, 503), never an unbounded buffer;
//! - the reader cuts its stdout into frames with the codec's limit
//!   (`FrameReader::next_frame_async`: an over-long line is dropped and audited as oversize,
//!   as in `wrap`), runs each through `Pipeline::from_server` and `pipeline::deliver` — on
//!   the task when judging it cannot block (`from_server_inline`), else on the blocking pool
//!   (a listing updates the pin store: never on a worker) — and hands what passes to
//!   [`Routes`] from there (a full stream is waited for on the task);
//! - the keeper awaits the exit (`reap.rs`: a pidfd, no thread in `wait`) and, once `close`
//!   asked, escalates: closed stdin → SIGTERM → SIGKILL to the process group, each after the
//!   grace, unless it exited meanwhile.
//!
//! Holds and sampling wait on tasks of their own, so the server's other messages keep flowing.
//! The child's stderr is ours (inherited when `child::spawn` started it), never its stdout.

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Notify;

use super::pool::Pool;
use super::reap;
use super::routes::{Pending, Routes};
use super::signer::Egress;
use crate::audit::Direction;
use crate::codec::frame::{is_blank, Frame, FrameReader};
use crate::pipeline::deliver::{self, Delivery, Settled};
use crate::pipeline::{Pipeline, Routing};
use crate::transport::child;
use crate::transport::stdio;

/// Lines queued for the child's stdin; a server that stops reading gets no more (503).
const STDIN_QUEUE: usize = 1024;

pub struct StdioSession {
    pub routes: Routes,
    stdin: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    /// The server's output is still open (it can still answer).
    alive: AtomicBool,
    closing: AtomicBool,
    /// `close` was called: wakes the keeper to escalate (a permit is kept if it is not waiting).
    stop: Notify,
    pipeline: Arc<Pipeline>,
    /// Signing and metrics on the way to the client.
    egress: Egress,
}

/// What is left to do on the session's task once a server message was judged.
enum Step {
    /// Acted on, record written.
    Done,
    /// The client's stream was full: wait for room, then finish acting; the delivery (and so
    /// its record) is kept until then.
    Wait(Pending, Delivery),
    /// Held for approval, or a sampling request: waited out on a task of its own.
    Later(Settled),
    /// The flood bound released notifications it held: they go first (`carry_out`).
    AfterReleased(Vec<(Routing, Vec<u8>)>, Settled, Vec<u8>),
}

/// Why a line could not be handed to the server.
#[derive(Debug)]
pub enum SendError {
    Gone,
    Full,
}

impl StdioSession {
    /// Attach `child` to a session and start its task on the current runtime. `on_exit` runs
    /// once the process is gone (the session table forgets the session).
    fn start(
        mut child: Child,
        pipeline: Arc<Pipeline>,
        egress: Egress,
        grace: Duration,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Arc<StdioSession>> {
        let pipes = (|| {
            let stdin = child.stdin.take().map(ChildStdin::from_std).transpose()?;
            let stdout = child.stdout.take().map(ChildStdout::from_std).transpose()?;
            Ok::<_, std::io::Error>((stdin, stdout))
        })();
        let (stdin, stdout) = match pipes {
            Ok(p) => p,
            Err(e) => {
                // No session will own it: stop it now and reap it, rather than leak it.
                child::signal_group(child.id(), libc::SIGKILL);
                tokio::spawn(reap::exited(child));
                return Err(e);
            }
        };
        let (tx, rx) = mpsc::channel::<Vec<u8>>(STDIN_QUEUE);
        let session = Arc::new(StdioSession {
            routes: Routes::default(),
            stdin: Mutex::new(Some(tx)),
            alive: AtomicBool::new(true),
            closing: AtomicBool::new(false),
            stop: Notify::new(),
            pipeline,
            egress,
        });
        let s = session.clone();
        tokio::spawn(async move {
            tokio::join!(
                write_stdin(stdin, rx),
                async {
                    s.read_server(stdout).await;
                    s.upstream_gone().await;
                },
                async {
                    s.keep(child, grace).await;
                    on_exit();
                },
            );
        });
        Ok(session)
    }

    /// A process from `pool` attached to a new session. Taking it may spawn one (fork, exec):
    /// that happens on the blocking pool, never on an async worker.
    pub async fn spawn(
        pool: &Arc<Pool>,
        pipeline: &Arc<Pipeline>,
        egress: Egress,
        grace: Duration,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Arc<StdioSession>> {
        let (pool, p) = (pool.clone(), pipeline.clone());
        let taken = tokio::task::spawn_blocking(move || {
            let child = pool.take()?;
            p.upstream_started(true);
            Ok(child)
        })
        .await;
        let started = taken
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
            .and_then(|child| StdioSession::start(child, pipeline.clone(), egress, grace, on_exit));
        if started.is_err() {
            pipeline.upstream_started(false);
        }
        started
    }

    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Queue one line for the server's stdin.
    pub fn send(&self, line: &[u8]) -> Result<(), SendError> {
        let guard = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        let tx = guard.as_ref().ok_or(SendError::Gone)?;
        match tx.try_send(line.to_vec()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SendError::Full),
            Err(TrySendError::Closed(_)) => Err(SendError::Gone),
        }
    }

    /// End the session: close stdin now (a stdio server's cue to exit), then SIGTERM and
    /// SIGKILL to its process group, each after the grace, unless it exited meanwhile (the
    /// keeper does that part). Callable from any thread, inside the runtime or not.
    pub fn close(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        if !self.closing.swap(true, Ordering::AcqRel) {
            self.stop.notify_one();
        }
    }

    /// Await the process's exit; once `close` asked, signal its group after each grace. The
    /// signals are sent only before this reaps it, so they can never reach a reused pid.
    async fn keep(&self, child: Child, grace: Duration) {
        let pid = child.id();
        let exit = reap::exited(child);
        tokio::pin!(exit);
        let status = tokio::select! {
            biased;
            status = &mut exit => status,
            () = self.stop.notified() => {
                let mut status = None;
                for sig in [libc::SIGTERM, libc::SIGKILL] {
                    tokio::select! {
                        biased;
                        s = &mut exit => {
                            status = Some(s);
                            break;
                        }
                        () = tokio::time::sleep(grace) => child::signal_group(pid, sig),
                    }
                }
                match status {
                    Some(s) => s,
                    None => exit.await,
                }
            }
        };
        if let Err(e) = status {
            tracing::warn!("waiting for server process {pid}: {e}");
        }
        self.alive.store(false, Ordering::Release);
        self.close();
    }

    async fn read_server(self: &Arc<Self>, stdout: Option<ChildStdout>) {
        let Some(out) = stdout else { return };
        let mut reader = FrameReader::new(out, self.pipeline.limits().max_message_bytes);
        loop {
            let next = reader.next_frame_async().await;
            let Some(frame) = stdio::frame_or_end(next, &"server stdout") else {
                return;
            };
            if matches!(&frame, Frame::Line(line) if is_blank(line)) {
                continue;
            }
            let started = Instant::now();
            // One frame at a time, in order: the next is read once this one was acted on.
            let Some(step) = self.judge(frame, started).await else {
                return;
            };
            self.carry_out(step).await;
        }
    }

    /// `from_server` (or the oversize record), its settling, and the acting on it. On the
    /// session's task when judging cannot block (`Pipeline::from_server_inline`: most messages,
    /// a hop to the blocking pool and back saved), else on the blocking pool (a listing updates
    /// the pin store), from where the client's stream is woken directly. `None` when the checks
    /// panicked: the reading ends as if the server had gone.
    async fn judge(self: &Arc<Self>, frame: Frame, started: Instant) -> Option<Step> {
        let frame = match frame {
            Frame::Line(line) => {
                let p = &self.pipeline;
                let inline = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    p.from_server_inline(&line)
                }));
                match inline {
                    Ok(Some(outcome)) => {
                        let settled = deliver::settle_async(p, outcome, started).await;
                        return Some(self.acted(settled, line));
                    }
                    Ok(None) => Frame::Line(line),
                    Err(_) => {
                        tracing::error!("judging a server message panicked");
                        return None;
                    }
                }
            }
            oversize => oversize,
        };
        let s = self.clone();
        let judged = tokio::task::spawn_blocking(move || {
            let p = &s.pipeline;
            let (outcome, line) = match frame {
                Frame::Line(line) => (p.from_server(&line), line),
                Frame::Oversize { seen } => {
                    (p.oversize(Direction::ServerToClient, seen), Vec::new())
                }
            };
            let settled = deliver::settle(p, outcome, started);
            s.acted(settled, line)
        })
        .await;
        judged
            .map_err(|e| tracing::error!("judging a server message: {e}"))
            .ok()
    }

    /// What is left once a server message was settled: acted on now when it can be.
    fn acted(&self, settled: Settled, line: Vec<u8>) -> Step {
        // Notifications the flood bound held back leave before this message (rare: they are
        // handed over on the session's task, which may wait for their streams).
        let released = self.released();
        if !released.is_empty() {
            return Step::AfterReleased(released, settled, line);
        }
        self.act_or_later(settled, &line)
    }

    fn act_or_later(&self, settled: Settled, line: &[u8]) -> Step {
        match settled {
            Settled::Act(d) => self.act_now(d, line),
            later => Step::Later(later),
        }
    }

    /// Finish what `judge` left, on the session's task: released notifications first (waiting
    /// for room, in order), a full stream waited for, a hold or sampling on a task of its own.
    async fn carry_out(self: &Arc<Self>, step: Step) {
        let step = match step {
            Step::AfterReleased(released, settled, line) => {
                for (routing, bytes) in released {
                    self.routes.deliver(&routing, &bytes).await;
                }
                self.act_or_later(settled, &line)
            }
            other => other,
        };
        match step {
            // `act_or_later` never releases: nothing of the kind is left.
            Step::Done | Step::AfterReleased(..) => {}
            Step::Wait(pending, d) => self.wait_then_answer(pending, d).await,
            Step::Later(settled) => {
                tokio::spawn(self.clone().later(settled));
            }
        }
    }

    /// Act on a settled verdict about a server message without waiting: forward it to the
    /// client's stream (signed when signing is on), answer the server itself (a refused server
    /// request). The record is written when `d` drops: here, or after the wait for a full
    /// stream (`Step::Wait`).
    fn act_now(&self, d: Delivery, line: &[u8]) -> Step {
        if let Some(bytes) = d.onward(line) {
            let signed = self.egress.finish(bytes);
            match self
                .routes
                .try_deliver(&d.routing, signed.as_deref().unwrap_or(bytes))
            {
                Ok(took) => self.took(took),
                Err(pending) => return Step::Wait(pending, d),
            }
        }
        self.answer_server(&d);
        Step::Done
    }

    /// The notifications the flood bound released (judged and counted when they arrived), in
    /// order, each with its stream's routing, signed when signing is on.
    fn released(&self) -> Vec<(Routing, Vec<u8>)> {
        let p = &self.pipeline;
        p.take_released()
            .into_iter()
            .map(|(routing, line)| {
                let signed = self.egress.finish(&line);
                (routing, signed.unwrap_or(line))
            })
            .collect()
    }

    /// The client's stream was full: wait until it reads, then finish acting.
    async fn wait_then_answer(&self, pending: Pending, d: Delivery) {
        let took = pending.wait(&self.routes).await;
        self.took(took);
        self.answer_server(&d);
    }

    fn answer_server(&self, d: &Delivery) {
        if let Some(answer) = &d.back {
            let _ = self.send(answer);
        }
    }

    fn took(&self, took: Option<Duration>) {
        if let Some(took) = took {
            self.egress.upstream_took(took);
        }
    }

    /// A hold waited out, or a sampling request answered (both on the blocking pool), then
    /// settled and acted on like any verdict. On a task of its own: the server's other
    /// messages keep flowing meanwhile.
    async fn later(self: Arc<Self>, mut settled: Settled) {
        loop {
            settled = match settled {
                Settled::Act(d) => {
                    if let Step::Wait(pending, d) = self.act_now(d, &[]) {
                        self.wait_then_answer(pending, d).await;
                    }
                    return;
                }
                Settled::Hold(held) => {
                    let waited = deliver::wait_hold_async(&self.pipeline, *held).await;
                    deliver::settle_async(&self.pipeline, waited.outcome, Instant::now()).await
                }
                Settled::Sample(job, record) => {
                    let ran = deliver::run_sample_async(&self.pipeline, *job, record).await;
                    let Some((outcome, started)) = ran else {
                        return;
                    };
                    deliver::settle_async(&self.pipeline, outcome, started).await
                }
            };
        }
    }

    /// The server's stdout closed: every request still waiting gets its one answer, then every
    /// stream ends.
    async fn upstream_gone(&self) {
        self.alive.store(false, Ordering::Release);
        let p = self.pipeline.clone();
        // The trust store's flush and the answers' settling touch the disk: the blocking pool.
        let answers = tokio::task::spawn_blocking(move || {
            p.upstream_stopped();
            p.abandon_pending("the MCP server exited before answering")
                .into_iter()
                .filter_map(
                    |outcome| match deliver::settle(&p, outcome, Instant::now()) {
                        Settled::Act(d) => Some(d),
                        _ => None,
                    },
                )
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for d in answers {
            if let Some(answer) = &d.back {
                self.routes.deliver(&d.routing, answer).await;
            }
        }
        self.routes.close_all();
        // A server that closed its output can answer nothing more: end the process too.
        self.close();
        let p = self.pipeline.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = p.audit().flush() {
                tracing::warn!("audit flush: {e}");
            }
        })
        .await;
    }
}

/// Feed the child's stdin, a line at a time, until the queue's sender is dropped (`close`):
/// then its stdin closes, the polite way to ask a stdio server to stop.
async fn write_stdin(stdin: Option<ChildStdin>, mut rx: mpsc::Receiver<Vec<u8>>) {
    let Some(mut stdin) = stdin else { return };
    while let Some(mut line) = rx.recv().await {
        line.push(b'\n');
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, Fsync};
    use crate::codec::Limits;

    struct Started {
        session: Arc<StdioSession>,
        exited: tokio::sync::oneshot::Receiver<()>,
        audit: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    async fn start(script: &str, grace: Duration, max: usize) -> Started {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("a.jsonl");
        let log = AuditLog::open_file(&audit, Fsync::Never).unwrap();
        let limits = Limits {
            max_message_bytes: max,
            ..Limits::default()
        };
        let p = Arc::new(Pipeline::new("t", limits, log, Arc::default()));
        let pool = Pool::new(vec!["sh".into(), "-c".into(), script.into()], 0);
        let (tx, exited) = tokio::sync::oneshot::channel();
        let egress = Egress {
            signer: None,
            metrics: None,
        };
        let session = StdioSession::spawn(&pool, &p, egress, grace, move || {
            let _ = tx.send(());
        })
        .await
        .unwrap();
        Started {
            session,
            exited,
            audit,
            _dir: dir,
        }
    }

    /// A server that ignores its closed stdin and SIGTERM is killed after the second grace.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_escalates_to_sigkill_after_two_graces() {
        let grace = Duration::from_millis(150);
        let s = start("trap '' TERM; exec sleep 30", grace, 1 << 20).await;
        let took = close_and_wait(s.session.clone(), s.exited).await;
        assert!(took >= 2 * grace, "{took:?}");
        assert!(!s.session.is_alive());
        assert!(matches!(s.session.send(b"{}"), Err(SendError::Gone)));
    }

    /// A server that exits on closed stdin is reaped at once, never signalled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_stdin_is_the_polite_stop() {
        let s = start("cat >/dev/null", Duration::from_secs(20), 1 << 20).await;
        let took = close_and_wait(s.session, s.exited).await;
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    /// A flood of progress about one request: the bound lets 200 a second through and holds
    /// the latest of the rest, which is released on that request's own stream ahead of the
    /// answer it leads to (it used to be lost in `serve`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn progress_held_by_the_flood_bound_reaches_its_request_before_the_answer() {
        let script = r#"read line; i=0; while [ $i -lt 300 ]; do printf '{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":%d}}\n' $i; i=$((i+1)); done; printf '{"jsonrpc":"2.0","id":1,"result":{"resources":[]}}\n'; cat >/dev/null"#;
        let s = start(script, Duration::from_secs(5), 1 << 20).await;
        let p = s.session.pipeline().clone();
        let req = br#"{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{"_meta":{"progressToken":"t"}}}"#;
        let Routing::Asked(asked) = p.from_client(req).routing else {
            panic!("a request that goes on is asked");
        };
        let routes = &s.session.routes;
        let (mut rx, answered) = routes.open_request(&p, &asked, true, None).unwrap();
        s.session.send(req).unwrap();
        let mut chunks = Vec::new();
        while let Ok(Some(c)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            chunks.push(String::from_utf8_lossy(&c).into_owned());
        }
        assert!(answered.load(Ordering::Acquire));
        let n = chunks.len();
        assert!(n < 300, "the bound let all {n} through");
        assert!(chunks[n - 1].contains("\"result\""), "{}", chunks[n - 1]);
        assert!(
            chunks[n - 2].contains("\"progress\":299"),
            "{}",
            chunks[n - 2]
        );
        s.session.close();
    }

    /// `close`, then how long until the process was reaped (at most 10 s).
    async fn close_and_wait(
        session: Arc<StdioSession>,
        exited: tokio::sync::oneshot::Receiver<()>,
    ) -> Duration {
        let t = Instant::now();
        session.close();
        tokio::time::timeout(Duration::from_secs(10), exited)
            .await
            .expect("the process exits after close")
            .unwrap();
        t.elapsed()
    }

    /// An over-long line is dropped and audited as oversize with its size, and the next line
    /// still gets through (to the GET stream: a server notification).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_oversize_line_is_audited_and_the_stream_resyncs() {
        let note = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"after"}}"#;
        let script = format!("head -c 5000 /dev/zero | tr '\\0' x; echo; echo '{note}'; cat");
        let s = start(&script, Duration::from_secs(1), 1000).await;
        let mut get = s.session.routes.open_get().unwrap();
        let chunk = tokio::time::timeout(Duration::from_secs(5), get.recv())
            .await
            .expect("the line after the oversize one")
            .unwrap();
        assert!(String::from_utf8_lossy(&chunk).contains("after"));
        s.session.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.exited).await;
        s.session.pipeline().audit().flush().unwrap();
        let audit = std::fs::read_to_string(&s.audit).unwrap();
        let oversize = audit
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["bytes"] == 5000)
            .unwrap_or_else(|| panic!("no oversize record:\n{audit}"));
        assert_eq!(oversize["decision"], "deny", "{oversize}");
    }
}
