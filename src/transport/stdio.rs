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

use std::io::{self, Read, Write};
use std::process::{ChildStdin, ExitStatus};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::child;
use super::line_heads::{Heads, LineHeads};
use crate::audit::Direction;
use crate::codec::frame::{is_blank, FrameReader, FrameRef};
use crate::pipeline::deliver::{self, Settled};
use crate::pipeline::{Outcome, Pipeline};

/// How `wrap` runs one child.
pub struct WrapOptions {
    pub command: Vec<String>,
    pub grace: Duration,
    /// Landlock ruleset for the child (`proxy.sandbox_child`), if the kernel allows one.
    pub sandbox: Option<Arc<child::Sandbox>>,
}

enum Event {
    ClientEof,
    ServerEof,
    Signal(i32),
    ChildExit(io::Result<ExitStatus>),
}

/// The client side of the relay as `run` receives it. The process's own stdin/stdout (what
/// `wrap` passes) are used through their file descriptors: one buffer (ours) on the way in, one
/// `write(2)` per flush on the way out, no line buffering and no std lock in between. Any other
/// reader/writer is used as given.
pub enum ClientIn {
    Stdin,
    Reader(Box<dyn Read + Send>),
}

/// See [`ClientIn`].
pub enum ClientOut {
    Stdout,
    Writer(Box<dyn Write + Send>),
}

/// A file descriptor we do not own (0 or 1): plain `read(2)` / `write(2)` / `writev(2)`.
struct Fd(libc::c_int);

impl Read for Fd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the pointer and length describe `buf`, which outlives the call.
        let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl Write for Fd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: as for `read`.
        let n = unsafe { libc::write(self.0, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: IoSlice is ABI-compatible with iovec; the slices outlive the call.
        let n = unsafe {
            libc::writev(
                self.0,
                bufs.as_ptr().cast(),
                bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where one side's bytes end up.
enum Sink {
    Fd(Fd),
    Child(ChildStdin),
    Writer(Box<dyn Write + Send>),
}

impl Sink {
    fn as_write(&mut self) -> &mut dyn Write {
        match self {
            Sink::Fd(f) => f,
            Sink::Child(c) => c,
            Sink::Writer(w) => w,
        }
    }

    /// `line` and its `\n` in one `writev` (more only when the pipe takes part of it).
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let w = self.as_write();
        let total = line.len() + 1;
        let mut done = 0;
        while done < total {
            let n = if done < line.len() {
                w.write_vectored(&[io::IoSlice::new(&line[done..]), io::IoSlice::new(b"\n")])
            } else {
                w.write(b"\n")
            };
            match n {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        w.flush()
    }

    fn write_buf(&mut self, buf: &[u8]) -> io::Result<()> {
        let w = self.as_write();
        w.write_all(buf)?;
        w.flush()
    }
}

/// Coalesced output waiting for a flush is written once it reaches this size.
const FLUSH_AT: usize = 64 * 1024;

/// One side's writer: a sink and the lines queued for it. Shared by both reader threads.
struct Out {
    sink: Option<Sink>,
    queued: Vec<u8>,
    /// Which side, for the log; a failed server side is closed, a failed client side is not
    /// (the client reads answers until it goes).
    server: bool,
}

impl Out {
    /// Queue or write one line. With `now`, it (and anything queued before it) leaves with one
    /// write; otherwise it waits for a flush unless the queue is full. Returns whether something
    /// is left queued.
    fn send(&mut self, line: &[u8], now: bool) -> bool {
        let Some(sink) = self.sink.as_mut() else {
            return false;
        };
        let result = if now && self.queued.is_empty() {
            sink.write_line(line)
        } else {
            self.queued.extend_from_slice(line);
            self.queued.push(b'\n');
            if !now && self.queued.len() < FLUSH_AT {
                return true;
            }
            let r = sink.write_buf(&self.queued);
            self.clear_queue();
            r
        };
        if let Err(e) = result {
            self.failed(e);
        }
        false
    }

    fn flush(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let result = match self.sink.as_mut() {
            Some(sink) => sink.write_buf(&self.queued),
            None => Ok(()),
        };
        self.clear_queue();
        if let Err(e) = result {
            self.failed(e);
        }
    }

    fn clear_queue(&mut self) {
        self.queued.clear();
        if self.queued.capacity() > 4 * FLUSH_AT {
            self.queued = Vec::new();
        }
    }

    fn failed(&mut self, e: io::Error) {
        if self.server {
            tracing::debug!("server stdin closed: {e}");
            self.sink = None;
        } else {
            tracing::debug!("client stdout closed: {e}");
        }
    }
}

/// Where a verdict's bytes go. Each side is a line-oriented writer shared by both readers.
struct Sides {
    client: Mutex<Out>,
    server: Mutex<Out>,
}

fn lock(m: &Mutex<Out>) -> std::sync::MutexGuard<'_, Out> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sides {
    /// Write a line to the client now (lifecycle answers, approvals).
    fn to_client(&self, bytes: &[u8]) {
        lock(&self.client).send(bytes, true);
    }

    /// Write (`now`) or queue a line for `side`; returns the sides left with something queued.
    fn send(&self, side: Side, bytes: &[u8], now: bool) -> Queued {
        let out = match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        };
        if lock(out).send(bytes, now) {
            side as Queued
        } else {
            0
        }
    }

    /// Write out what is queued for the given sides. Only those: a side this thread did not
    /// queue to is the other thread's (it flushes before it blocks), and locking it here would
    /// contend with that thread's writes.
    fn flush(&self, queued: Queued) {
        if queued & Side::Client as Queued != 0 {
            lock(&self.client).flush();
        }
        if queued & Side::Server as Queued != 0 {
            lock(&self.server).flush();
        }
    }

    fn close_server(&self) {
        let mut out = lock(&self.server);
        out.flush();
        out.sink = None;
    }
}

#[derive(Clone, Copy)]
enum Side {
    Client = 1,
    Server = 2,
}

/// A set of sides (bits of `Side`) with lines queued.
type Queued = u8;

/// Run the relay until the child is gone. Returns the exit code for the proxy.
pub fn run(
    opts: WrapOptions,
    pipeline: Arc<Pipeline>,
    client_in: ClientIn,
    client_out: ClientOut,
) -> io::Result<i32> {
    let client_in: Box<dyn Read + Send> = match client_in {
        ClientIn::Stdin => Box::new(Fd(libc::STDIN_FILENO)),
        ClientIn::Reader(r) => r,
    };
    let client_sink = match client_out {
        ClientOut::Stdout => {
            // Nothing else writes MCP to stdout; make sure std's buffer holds nothing either.
            let _ = io::stdout().flush();
            Sink::Fd(Fd(libc::STDOUT_FILENO))
        }
        ClientOut::Writer(w) => Sink::Writer(w),
    };
    let spawned = child::spawn_in(&opts.command, opts.sandbox.clone());
    pipeline.upstream_started(spawned.is_ok());
    let mut child = spawned.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot start server {:?}: {e}", opts.command.join(" ")),
        )
    })?;
    let pid = child.id();
    // This relay can send the proxy's own requests to the client (`deliver`): approvals are
    // asked where the human is when the client declared elicitation.
    pipeline.ask_through_client();
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    let sides = Arc::new(Sides {
        client: Mutex::new(Out {
            sink: Some(client_sink),
            queued: Vec::new(),
            server: false,
        }),
        server: Mutex::new(Out {
            sink: stdin.map(Sink::Child),
            queued: Vec::new(),
            server: true,
        }),
    });
    let (tx, rx) = mpsc::channel::<Event>();
    let max = pipeline.limits().max_message_bytes;

    spawn_named("client-reader", {
        let (p, s, tx) = (pipeline.clone(), sides.clone(), tx.clone());
        move || {
            relay(
                FrameReader::new(client_in, max),
                Direction::ClientToServer,
                &p,
                &s,
                None,
            );
            let _ = tx.send(Event::ClientEof);
        }
    })?;
    if let Some(stdout) = stdout {
        spawn_named("server-reader", {
            let (p, s, tx) = (pipeline.clone(), sides.clone(), tx.clone());
            move || {
                // Keeps the ends of over-long lines: an oversized answer must still be
                // answered to the client request it was for.
                let (stdout, heads) = LineHeads::new(stdout, max);
                relay(
                    FrameReader::new(stdout, max),
                    Direction::ServerToClient,
                    &p,
                    &s,
                    Some(heads),
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

    let status = supervise(&rx, pid, opts.grace, &sides, &|| pipeline.client_closed());
    pipeline.upstream_stopped();
    // The child is gone: give every client request still waiting its one answer.
    for outcome in pipeline.abandon_pending("the MCP server exited before answering") {
        if let Settled::Act(d) = deliver::settle(&pipeline, outcome, Instant::now()) {
            if let Some(answer) = &d.back {
                sides.to_client(answer);
            }
        }
    }
    // A last signed checkpoint covers the tail, then everything is on disk before we exit.
    pipeline.audit().checkpoint_now();
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
    client_closed: &dyn Fn(),
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
                // Nobody is left to receive a held call's answer: withdraw the holds.
                client_closed();
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

/// (where a forwarded message goes, where an answer goes back) for a direction.
fn sides_for(direction: Direction) -> (Side, Side) {
    match direction {
        Direction::ClientToServer => (Side::Server, Side::Client),
        _ => (Side::Client, Side::Server),
    }
}

/// The next frame of a peer's output, or `None` once it ended: a read error ends the relay like
/// end-of-file does (the peer is gone either way), logged with `side` so the two can be told apart.
/// Shared by `wrap`'s relay and `serve`'s stdio upstream reader.
pub(crate) fn frame_or_end<T>(
    next: io::Result<Option<T>>,
    side: &dyn std::fmt::Debug,
) -> Option<T> {
    next.unwrap_or_else(|e| {
        tracing::debug!("read error ({side:?}): {e}");
        None
    })
}

/// Read frames from one side, run each through the pipeline, act on the verdict, audit it.
///
/// Under load, output is coalesced: while more input is already buffered, the lines this thread
/// writes are queued, and they leave (one write per side) right before the reader next has to
/// read, i.e. before it could block. A lone message is written at once, before its audit record.
fn relay<R: Read>(
    mut reader: FrameReader<R>,
    direction: Direction,
    pipeline: &Arc<Pipeline>,
    sides: &Arc<Sides>,
    heads: Option<Heads>,
) {
    let mut queued: Queued = 0;
    // Index of the next frame: one per `\n`, as `LineHeads` counts them.
    let mut index: u64 = 0;
    loop {
        let next = reader.next_frame_ref(&mut || {
            if queued != 0 {
                sides.flush(std::mem::take(&mut queued));
            }
        });
        let Some((frame, more)) = frame_or_end(next, &direction) else {
            break;
        };
        let started = Instant::now();
        index += 1;
        let (outcome, line): (Outcome, &[u8]) = match frame {
            FrameRef::Line(line) if is_blank(line) => continue,
            FrameRef::Line(line) => {
                if direction == Direction::ClientToServer {
                    // A call before any listing: pin the server's listing first (prefetch.rs).
                    if let Some(request) = pipeline.prefetch_request(line) {
                        sides.flush(std::mem::take(&mut queued));
                        let q = sides.send(Side::Server, &request, true);
                        sides.flush(q);
                        pipeline.await_prefetch(crate::pipeline::PREFETCH_WAIT);
                    }
                }
                let outcome = match direction {
                    Direction::ClientToServer => pipeline.from_client(line),
                    _ => pipeline.from_server(line),
                };
                (outcome, line)
            }
            FrameRef::Oversize { seen } => match &heads {
                Some(h) => (
                    pipeline.oversize_answer(seen, h.id_of(index - 1).as_deref()),
                    &[],
                ),
                None => (pipeline.oversize(direction, seen), &[]),
            },
        };
        if direction == Direction::ServerToClient {
            // Notifications the flood bound held back leave before this message.
            for (_, held) in pipeline.take_released() {
                queued |= sides.send(Side::Client, &held, !more);
            }
        }
        queued |= deliver(outcome, line, direction, pipeline, sides, started, !more);
    }
    if queued != 0 {
        sides.flush(queued);
    }
}

/// Act on one verdict (`pipeline::deliver` settles it and seals its record: durable ones are on
/// disk before anything moves, the rest are written when the delivery is dropped, after the
/// lines were written or queued). With `now` false the lines may be queued (see `relay`);
/// returns the sides that were.
fn deliver(
    outcome: Outcome,
    line: &[u8],
    direction: Direction,
    pipeline: &Arc<Pipeline>,
    sides: &Arc<Sides>,
    started: Instant,
    now: bool,
) -> Queued {
    let (forward, back) = sides_for(direction);
    match deliver::settle(pipeline, outcome, started) {
        Settled::Act(d) => {
            let mut queued = 0;
            if let Some(bytes) = d.onward(line) {
                queued |= sides.send(forward, bytes, now);
            }
            if let Some(bytes) = &d.back {
                queued |= match back {
                    Side::Server => answer_server(sides, bytes),
                    Side::Client => sides.send(back, bytes, now),
                };
            }
            queued
        }
        Settled::Hold(held) => {
            // Asked through the client: the proxy's own `elicitation/create` goes out now (its
            // id is registered, so the answer is consumed, never forwarded to the server).
            if let Some(ask) = &held.ask {
                sides.to_client(ask);
            }
            // The wait happens on its own thread: other messages keep flowing meanwhile.
            let (p, s) = (pipeline.clone(), sides.clone());
            let spawned = spawn_named("approval-wait", move || {
                let waited = deliver::wait_hold(&p, *held);
                if let Some(withdraw) = &waited.withdraw {
                    s.to_client(withdraw);
                }
                deliver(waited.outcome, &[], direction, &p, &s, Instant::now(), true);
            });
            if let Err(e) = spawned {
                tracing::error!("cannot wait for approval: {e}");
            }
            0
        }
        Settled::Sample(job, record) => {
            // The backend takes seconds: its own thread, and the answer goes to the server from
            // there (through `answer_server`, like any answer to the server).
            let (p, s) = (pipeline.clone(), sides.clone());
            let spawned = spawn_named("sampling", move || {
                let (outcome, started) = deliver::run_sample(&p, *job, record);
                deliver(outcome, &[], direction, &p, &s, started, true);
            });
            if let Err(e) = spawned {
                tracing::error!("cannot start a sampling request: {e}");
            }
            0
        }
    }
}

/// The server reader answering the server itself (a declined elicitation, a refused request).
/// The client reader may be holding the server side, blocked writing to a child that is in turn
/// blocked writing to us: waiting for that lock here would deadlock all three. When the side is
/// busy, a short-lived thread delivers the answer as soon as it is free.
fn answer_server(sides: &Arc<Sides>, bytes: &[u8]) -> Queued {
    match sides.server.try_lock() {
        Ok(mut out) => {
            out.send(bytes, true);
        }
        Err(std::sync::TryLockError::Poisoned(p)) => {
            p.into_inner().send(bytes, true);
        }
        Err(std::sync::TryLockError::WouldBlock) => {
            let (s, b) = (sides.clone(), bytes.to_vec());
            if let Err(e) = spawn_named("answer-server", move || {
                lock(&s.server).send(&b, true);
            }) {
                tracing::error!("cannot deliver an answer to the server: {e}");
            }
        }
    }
    0
}

/// A named thread (names show in `top -H` and panics); `Err` when the system refuses one.
pub(crate) fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
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
