//! `wrap`: relay a client's stdio to a child server's stdio through the pipeline.
//!
//! Two reader threads (client → server, server → client) run the pipeline inline and write the
//! verdict straight to the other side: no queue or task hop on the hot path. The main thread only
//! supervises the lifecycle:
//!
//! - client EOF or SIGINT/SIGTERM → close the child's stdin → SIGTERM to its process group after
//!   the grace period → SIGKILL after another;
//! - child exit → drain its remaining output, answer every client request still waiting, flush
//!   the audit, exit with the child's status.

use std::io::{self, BufReader, Read, Write};
use std::process::{ChildStdin, ExitStatus};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::child;
use crate::audit::Direction;
use crate::codec::frame::{is_blank, Frame, FrameReader};
use crate::pipeline::{Outcome, Pipeline, Verdict};

/// How `wrap` runs one child.
pub struct WrapOptions {
    pub command: Vec<String>,
    pub grace: Duration,
}

enum Event {
    ClientEof,
    ServerEof,
    Signal(i32),
    ChildExit(io::Result<ExitStatus>),
}

/// Where a verdict's bytes go. Each side is a line-oriented writer shared by both readers.
struct Sides {
    client: Mutex<Box<dyn Write + Send>>,
    server: Mutex<Option<ChildStdin>>,
}

impl Sides {
    fn to_client(&self, bytes: &[u8]) {
        let mut out = self.client.lock().unwrap_or_else(|p| p.into_inner());
        // One write per message keeps lines whole even if the client reads slowly.
        let ok = out
            .write_all(bytes)
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush());
        if let Err(e) = ok {
            tracing::debug!("client stdout closed: {e}");
        }
    }

    fn to_server(&self, bytes: &[u8]) {
        let mut guard = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stdin) = guard.as_mut() {
            let ok = stdin
                .write_all(bytes)
                .and_then(|_| stdin.write_all(b"\n"))
                .and_then(|_| stdin.flush());
            if let Err(e) = ok {
                tracing::debug!("server stdin closed: {e}");
                *guard = None;
            }
        }
    }

    fn close_server(&self) {
        self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Run the relay until the child is gone. Returns the exit code for the proxy.
pub fn run(
    opts: WrapOptions,
    pipeline: Arc<Pipeline>,
    client_in: Box<dyn Read + Send>,
    client_out: Box<dyn Write + Send>,
) -> io::Result<i32> {
    let spawned = child::spawn(&opts.command);
    pipeline.upstream_started(spawned.is_ok());
    let mut child = spawned.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot start server {:?}: {e}", opts.command.join(" ")),
        )
    })?;
    let pid = child.id();
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    let sides = Arc::new(Sides {
        client: Mutex::new(client_out),
        server: Mutex::new(stdin),
    });
    let (tx, rx) = mpsc::channel::<Event>();
    let max = pipeline.limits().max_message_bytes;

    spawn_named("client-reader", {
        let (p, s, tx) = (pipeline.clone(), sides.clone(), tx.clone());
        move || {
            relay(
                FrameReader::new(BufReader::with_capacity(64 * 1024, client_in), max),
                Direction::ClientToServer,
                &p,
                &s,
            );
            let _ = tx.send(Event::ClientEof);
        }
    })?;
    if let Some(stdout) = stdout {
        spawn_named("server-reader", {
            let (p, s, tx) = (pipeline.clone(), sides.clone(), tx.clone());
            move || {
                relay(
                    FrameReader::new(BufReader::with_capacity(64 * 1024, stdout), max),
                    Direction::ServerToClient,
                    &p,
                    &s,
                );
                let _ = tx.send(Event::ServerEof);
            }
        })?;
    }
    spawn_named("child-wait", {
        let tx = tx.clone();
        move || {
            let _ = tx.send(Event::ChildExit(child.wait()));
        }
    })?;
    watch_signals(tx.clone());
    drop(tx);

    let status = supervise(&rx, pid, opts.grace, &sides);
    pipeline.upstream_stopped();
    // The child is gone: give every client request still waiting its one answer.
    for outcome in pipeline.abandon_pending("the MCP server exited before answering") {
        let started = Instant::now();
        if let Verdict::Answer(bytes) = &outcome.verdict {
            sides.to_client(bytes);
        }
        pipeline.finish(outcome.record, started);
    }
    pipeline.audit().flush()?;
    Ok(status.map_or(1, |s| child::exit_code(&s)))
}

/// Wait for the child to exit, escalating from closed stdin to SIGTERM to SIGKILL once shutdown
/// has begun. Returns the child's status.
fn supervise(
    rx: &mpsc::Receiver<Event>,
    pid: u32,
    grace: Duration,
    sides: &Sides,
) -> Option<ExitStatus> {
    let mut shutdown: Option<(Instant, u8)> = None; // (when the current stage started, stage)
    let mut status = None;
    let mut server_eof = false;
    loop {
        let timeout = match (&status, shutdown) {
            // Child gone: wait briefly for its last output to drain (a grandchild may hold the pipe).
            (Some(_), _) if !server_eof => Duration::from_millis(500),
            (Some(_), _) => return status,
            (None, Some((since, _))) => grace.saturating_sub(since.elapsed()),
            (None, None) => Duration::from_secs(3600),
        };
        match rx.recv_timeout(timeout) {
            Ok(Event::ChildExit(s)) => status = s.ok().or(Some(exit_status_failure())),
            Ok(Event::ServerEof) => {
                server_eof = true;
                if status.is_some() {
                    return status;
                }
            }
            Ok(event @ (Event::ClientEof | Event::Signal(_))) => {
                if let Event::Signal(sig) = event {
                    tracing::info!("signal {sig}: shutting down");
                }
                if shutdown.is_none() {
                    sides.close_server();
                    shutdown = Some((Instant::now(), 0));
                }
            }
            Err(RecvTimeoutError::Timeout) => match (&status, shutdown) {
                (Some(_), _) => return status,
                (None, Some((_, 0))) => {
                    child::signal_group(pid, libc::SIGTERM);
                    shutdown = Some((Instant::now(), 1));
                }
                (None, Some(_)) => {
                    child::signal_group(pid, libc::SIGKILL);
                    shutdown = Some((Instant::now(), 2));
                }
                (None, None) => {}
            },
            Err(RecvTimeoutError::Disconnected) => return status,
        }
    }
}

fn exit_status_failure() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(1 << 8)
}

/// Writes one line to one side of the relay.
type SideWriter = fn(&Sides, &[u8]);

fn writers(direction: Direction) -> (SideWriter, SideWriter) {
    match direction {
        Direction::ClientToServer => (Sides::to_server, Sides::to_client),
        _ => (Sides::to_client, Sides::to_server),
    }
}

/// Read frames from one side, run each through the pipeline, act on the verdict, audit it.
fn relay<R: io::BufRead>(
    mut reader: FrameReader<R>,
    direction: Direction,
    pipeline: &Arc<Pipeline>,
    sides: &Arc<Sides>,
) {
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("read error ({direction:?}): {e}");
                return;
            }
        };
        let started = Instant::now();
        let (outcome, line) = match frame {
            Frame::Line(line) if is_blank(&line) => continue,
            Frame::Line(line) => {
                let outcome = match direction {
                    Direction::ClientToServer => pipeline.from_client(&line),
                    _ => pipeline.from_server(&line),
                };
                (outcome, line)
            }
            Frame::Oversize { seen } => (pipeline.oversize(direction, seen), Vec::new()),
        };
        deliver(outcome, &line, direction, pipeline, sides, started);
    }
}

/// Act on one verdict and write its audit record. A record marked durable (high and critical
/// calls) is on disk before the call is forwarded; if it cannot be written the call is refused.
fn deliver(
    outcome: Outcome,
    line: &[u8],
    direction: Direction,
    pipeline: &Arc<Pipeline>,
    sides: &Arc<Sides>,
    started: Instant,
) {
    let (forward, back) = writers(direction);
    let Outcome { verdict, record } = outcome;
    if let Verdict::Hold(held) = verdict {
        pipeline.finish(record, started);
        // The wait happens on its own thread: other messages keep flowing meanwhile.
        let (p, s) = (pipeline.clone(), sides.clone());
        let spawned = spawn_named("approval-wait", move || {
            let resolution = p.wait_for(&held);
            let outcome = p.resolve_hold(*held, resolution);
            deliver(outcome, &[], direction, &p, &s, Instant::now());
        });
        if let Err(e) = spawned {
            tracing::error!("cannot wait for approval: {e}");
        }
        return;
    }
    let forwards = matches!(
        verdict,
        Verdict::Forward | Verdict::Rewrite(_) | Verdict::Split { .. }
    );
    if record.durable && forwards {
        let id = record.id.clone();
        if let Err(e) = pipeline.finish_durable(record, started) {
            // Fail closed: no durable record, no high-risk call.
            eprintln!("mcp-warden: audit write failed, refusing the call: {e}");
            if let Some(answer) = pipeline.audit_failure_answer(id.as_deref()) {
                back(sides, &answer);
            }
            return;
        }
        act(&verdict, line, forward, back, sides);
        return;
    }
    act(&verdict, line, forward, back, sides);
    pipeline.finish(record, started);
}

fn act(verdict: &Verdict, line: &[u8], forward: SideWriter, back: SideWriter, sides: &Sides) {
    match verdict {
        Verdict::Forward => forward(sides, line),
        Verdict::Rewrite(bytes) => forward(sides, bytes),
        Verdict::Answer(bytes) => back(sides, bytes),
        Verdict::Split { forward: f, answer } => {
            forward(sides, f);
            back(sides, answer);
        }
        Verdict::Drop | Verdict::Hold(_) => {}
    }
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
}

/// SIGINT and SIGTERM start the same orderly shutdown as client EOF.
fn watch_signals(tx: Sender<Event>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let _ = spawn_named("signals", move || {
                for s in signals.forever() {
                    if tx.send(Event::Signal(s)).is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => tracing::warn!("cannot watch signals: {e}"),
    }
}
