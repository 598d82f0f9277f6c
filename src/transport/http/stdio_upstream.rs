//! One HTTP session (or one modern-era request) bound to its own stdio server process. Three
//! threads, like `wrap`: a writer feeding the child's stdin, a reader running every line of its
//! stdout through `Pipeline::from_server` and handing the verdict to [`Routes`], and a keeper
//! that reaps it; `close` ends it (closed stdin → SIGTERM → SIGKILL).

use std::io::{BufReader, Write};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::pool::Pool;
use super::routes::Routes;
use super::signer::Egress;
use crate::audit::Direction;
use crate::codec::frame::{is_blank, Frame, FrameReader};
use crate::pipeline::deliver::{self, Settled};
use crate::pipeline::{Outcome, Pipeline};
use crate::transport::child;
use crate::transport::stdio::{self, spawn_named as spawn};

/// Lines queued for the child's stdin; a server that stops reading gets no more (503).
const STDIN_QUEUE: usize = 1024;

pub struct StdioSession {
    pub routes: Routes,
    stdin: Mutex<Option<SyncSender<Vec<u8>>>>,
    /// The server's output is still open (it can still answer).
    alive: AtomicBool,
    /// The process has been reaped: never signal its pid (group) again.
    exited: Arc<AtomicBool>,
    closing: AtomicBool,
    pid: u32,
    grace: Duration,
    pipeline: Arc<Pipeline>,
    /// Signing and metrics on the way to the client.
    egress: Egress,
}

/// Why a line could not be handed to the server.
#[derive(Debug)]
pub enum SendError {
    Gone,
    Full,
}

impl StdioSession {
    /// Attach `child` to a session. `on_exit` runs once the process is gone (the session table
    /// forgets the session).
    pub fn start(
        mut child: Child,
        pipeline: Arc<Pipeline>,
        egress: Egress,
        grace: Duration,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Arc<StdioSession>> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(STDIN_QUEUE);
        let session = Arc::new(StdioSession {
            routes: Routes::default(),
            stdin: Mutex::new(Some(tx)),
            alive: AtomicBool::new(true),
            exited: Arc::new(AtomicBool::new(false)),
            closing: AtomicBool::new(false),
            pid: child.id(),
            grace,
            pipeline: pipeline.clone(),
            egress,
        });
        pipeline.upstream_started(true);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        spawn("stdio-writer", move || {
            let Some(mut stdin) = stdin else { return };
            for mut line in rx {
                line.push(b'\n');
                if stdin.write_all(&line).and_then(|_| stdin.flush()).is_err() {
                    return;
                }
            }
            // Sender dropped: closing stdin is the polite way to ask a stdio server to stop.
        })?;
        let s = session.clone();
        spawn("stdio-reader", move || {
            if let Some(out) = stdout {
                let max = s.pipeline.limits().max_message_bytes;
                s.read_server(FrameReader::new(
                    BufReader::with_capacity(64 * 1024, out),
                    max,
                ));
            }
            s.upstream_gone();
        })?;
        let s = session.clone();
        spawn("stdio-keeper", move || {
            // Blocks until the process exits: no polling per session.
            let _ = child.wait();
            s.exited.store(true, Ordering::Release);
            s.alive.store(false, Ordering::Release);
            s.close();
            on_exit();
        })?;
        Ok(session)
    }

    /// A process from `pool` attached to a new session, started on the blocking pool: a spawn
    /// (fork, exec) and three threads have no business on an async worker.
    pub async fn spawn(
        pool: &Arc<Pool>,
        pipeline: &Arc<Pipeline>,
        egress: Egress,
        grace: Duration,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Arc<StdioSession>> {
        let (pool, p) = (pool.clone(), pipeline.clone());
        let started = tokio::task::spawn_blocking(move || {
            pool.take()
                .and_then(|child| StdioSession::start(child, p, egress, grace, on_exit))
        })
        .await;
        let started = started.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
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
            Err(TrySendError::Disconnected(_)) => Err(SendError::Gone),
        }
    }

    /// End the session: close stdin now (a stdio server's cue to exit), then SIGTERM and
    /// SIGKILL to its process group, each after the grace, unless it exited meanwhile.
    pub fn close(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        if self.closing.swap(true, Ordering::AcqRel) || self.exited.load(Ordering::Acquire) {
            return;
        }
        let (exited, pid, grace) = (self.exited.clone(), self.pid, self.grace);
        let _ = spawn("stdio-stop", move || {
            for sig in [libc::SIGTERM, libc::SIGKILL] {
                thread::sleep(grace);
                if exited.load(Ordering::Acquire) {
                    return;
                }
                child::signal_group(pid, sig);
            }
        });
    }

    fn read_server<R: std::io::BufRead>(self: &Arc<Self>, mut reader: FrameReader<R>) {
        loop {
            let Some(frame) = stdio::frame_or_end(reader.next_frame(), &"server stdout") else {
                return;
            };
            let started = Instant::now();
            let (outcome, line) = match frame {
                Frame::Line(line) if is_blank(&line) => continue,
                Frame::Line(line) => (self.pipeline.from_server(&line), line),
                Frame::Oversize { seen } => (
                    self.pipeline.oversize(Direction::ServerToClient, seen),
                    Vec::new(),
                ),
            };
            self.act(outcome, &line, started);
        }
    }

    /// Act on a verdict about a server message (settled by `pipeline::deliver`): forward to
    /// the client's stream, or answer the server itself (a refused server request).
    fn act(self: &Arc<Self>, outcome: Outcome, line: &[u8], started: Instant) {
        match deliver::settle(&self.pipeline, outcome, started) {
            Settled::Act(d) => {
                if let Some(bytes) = d.onward(line) {
                    self.to_client(bytes);
                }
                if let Some(answer) = &d.back {
                    let _ = self.send(answer);
                }
            }
            Settled::Hold(held) => {
                // The wait happens on its own thread: other messages keep flowing meanwhile.
                let s = self.clone();
                let _ = spawn("approval-wait", move || {
                    let waited = deliver::wait_hold(&s.pipeline, *held);
                    s.act(waited.outcome, &[], Instant::now());
                });
            }
            Settled::Sample(job, record) => {
                // Answered by the inference backend, off the reader thread.
                let s = self.clone();
                let _ = spawn("sampling", move || {
                    let (outcome, started) = deliver::run_sample(&s.pipeline, *job, record);
                    s.act(outcome, &[], started);
                });
            }
        }
    }

    /// A message the pipeline let through, in its final form (signed when signing is on).
    fn to_client(&self, bytes: &[u8]) {
        let signed = self.egress.finish(bytes);
        let took = self.routes.deliver(signed.as_deref().unwrap_or(bytes));
        if let Some(took) = took {
            self.egress.upstream_took(took);
        }
    }

    /// The server's stdout closed: every request still waiting gets its one answer, then every
    /// stream ends.
    fn upstream_gone(&self) {
        self.alive.store(false, Ordering::Release);
        self.pipeline.upstream_stopped();
        for outcome in self
            .pipeline
            .abandon_pending("the MCP server exited before answering")
        {
            if let Settled::Act(d) = deliver::settle(&self.pipeline, outcome, Instant::now()) {
                if let Some(answer) = &d.back {
                    self.routes.deliver(answer);
                }
            }
        }
        self.routes.close_all();
        // A server that closed its output can answer nothing more: end the process too.
        self.close();
        if let Err(e) = self.pipeline.audit().flush() {
            tracing::warn!("audit flush: {e}");
        }
    }
}
