//! `mcp-warden connect URL`: stdio in (a desktop client), streamable HTTP out (a remote server,
//! usually behind `mcp-warden serve`). Requests are signed with the local key (SPEC §4 header
//! scheme); result signatures are checked against the key pinned for the server.
//!
//! | file         | job                                                                      |
//! |--------------|--------------------------------------------------------------------------|
//! | `mod.rs`     | runtime, stdin reader, stdout writer, the server's GET stream, shutdown  |
//! | `client.rs`  | client → server: `from_client`, then the POST (ordering, modern headers) |
//! | `relay.rs`   | server → client: bodies and SSE events, signature check, `from_server`   |
//! | `settle.rs`  | acting on a verdict: holds, sampling, durable records, answers back      |
//! | `http.rs`    | the upstream HTTP client: signing, session and protocol headers          |
//! | `pin.rs`     | the pinned server key, trust on first use, response verification         |
//!
//! Every message goes through the same `pipeline::Pipeline` as in `wrap` (pins, scans, policy,
//! rate limit, approval, redaction, server requests, one audit record each); the session's id
//! tables are the pipeline's. Invariants: stdout carries MCP only (one writer task owns it);
//! what passes goes on as the bytes the pipeline let through; SSE events are relayed as they
//! arrive, never buffered whole.

mod client;
mod http;
mod pin;
mod relay;
mod settle;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use std::io::Write as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::codec::{Frame, FrameReader};
use crate::pipeline::{Pipeline, Verdict};
use crate::sig::SigningKey;

pub use pin::ServerPin;
pub use tls::TlsFiles;

/// Everything `connect` needs, resolved by the CLI.
pub struct Options {
    pub url: String,
    /// The audience of every signature and the name of the pin file.
    pub server: String,
    pub key: SigningKey,
    /// `[[servers]] public_key` for this server, if configured.
    pub pinned_key: Option<String>,
    /// `[[servers]] tls_*` for this server.
    pub tls: tls::TlsFiles,
    /// `[[servers]] headers` for this server (its credentials).
    pub headers: std::collections::BTreeMap<String, String>,
    pub state: std::path::PathBuf,
    pub window_secs: u64,
    /// How long to wait for answers in flight once the client closed stdin.
    pub grace: Duration,
    /// The same pipeline `wrap` runs, built for this server (its audit trail included).
    pub pipeline: Arc<Pipeline>,
    /// `signatures.mode`: with `enforce`, an unsigned result from an unpinned server is refused;
    /// with `audit`, it passes with a warning and an alert record.
    pub mode: crate::config::SignatureMode,
}

/// Runs until the client closes stdin or a signal arrives. Returns the exit code.
pub fn run(opts: Options) -> Result<i32, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(opts))
}

async fn serve(opts: Options) -> Result<i32, String> {
    let upstream =
        http::Upstream::new(&opts.url, &opts.server, opts.key, &opts.tls, &opts.headers)?;
    let pin = ServerPin::load(
        &opts.server,
        opts.pinned_key.as_deref(),
        &opts.state,
        opts.window_secs,
    )?;
    let pipeline = opts.pipeline;
    // Approvals can be asked through the client, which reads stdout: like `wrap`.
    pipeline.ask_through_client();
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(1024);
    let writer = std::thread::Builder::new()
        .name("connect-stdout".into())
        .spawn(move || write_stdout(out_rx))
        .map_err(|e| format!("cannot start the stdout writer: {e}"))?;
    let ctx = Arc::new(relay::Ctx::new(
        upstream,
        pin,
        Arc::clone(&pipeline),
        out_tx,
        opts.mode,
    ));

    let (in_tx, mut in_rx) = mpsc::channel::<Frame>(64);
    let max = ctx.max_bytes();
    // Blocking stdin reads live on their own thread; the frame cap bounds what one line costs.
    std::thread::Builder::new()
        .name("connect-stdin".into())
        .spawn(move || {
            let mut reader = FrameReader::new(std::io::stdin().lock(), max);
            while let Ok(Some(frame)) = reader.next_frame() {
                if in_tx.blocking_send(frame).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot start the stdin reader: {e}"))?;

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut tasks = JoinSet::new();
    let mut signalled = false;
    let mut stream = None;
    loop {
        tokio::select! {
            frame = in_rx.recv() => match frame {
                Some(frame) => {
                    if let Some(task) = client::handle(&ctx, frame, &mut tasks).await {
                        if let Some(old) = stream.replace(task) {
                            old.abort();
                        }
                    }
                }
                None => break,
            },
            _ = term.recv() => { signalled = true; break; }
            _ = tokio::signal::ctrl_c() => { signalled = true; break; }
            // Reap finished request tasks so the set does not grow with the session.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Nobody is left to decide a held call through this client: withdraw the holds.
    let p = Arc::clone(&pipeline);
    let _ = tokio::task::spawn_blocking(move || p.client_closed()).await;
    if !signalled {
        // The client closed stdin: give answers in flight a moment to arrive.
        let _ = tokio::time::timeout(opts.grace, drain(&mut tasks)).await;
    }
    tasks.abort_all();
    if let Some(task) = stream {
        task.abort();
    }
    ctx.upstream.close().await;
    pipeline.upstream_stopped();
    // Every request still waiting gets its one answer, and its record.
    for outcome in pipeline.abandon_pending("connect is shutting down before the server answered") {
        let started = std::time::Instant::now();
        if let Verdict::Answer(bytes) = &outcome.verdict {
            ctx.emit(bytes.clone()).await;
        }
        pipeline.finish(outcome.record, started);
    }
    // A last signed checkpoint covers the tail, then everything is on disk.
    pipeline.audit().checkpoint_now();
    if let Err(e) = pipeline.audit().flush() {
        tracing::error!("audit flush failed: {e}");
    }
    drop(ctx);
    // The writer ends once every sender is gone (aborted tasks drop theirs promptly); it is
    // joined off the runtime so a stuck stdout cannot hang shutdown past the bound.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::task::spawn_blocking(move || writer.join()),
    )
    .await;
    Ok(0)
}

/// Waits for the request tasks (the event-stream task is not among them).
async fn drain(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// The only writer of stdout: one message per line, flushed at once. A plain thread: stdout is
/// a blocking pipe.
fn write_stdout(mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut stdout = std::io::stdout().lock();
    while let Some(mut line) = rx.blocking_recv() {
        line.push(b'\n');
        if stdout.write_all(&line).is_err() || stdout.flush().is_err() {
            tracing::debug!("stdout closed");
            return;
        }
    }
}

/// The legacy session's GET stream (server requests and notifications outside any request).
/// Reopened with `Last-Event-ID` when it ends, a few times; a server without one answers 405.
pub(crate) async fn server_stream(ctx: &Arc<relay::Ctx>) {
    let mut last_event: Option<String> = None;
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let resp = match ctx.upstream.open_stream(last_event.as_deref()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot open the server's event stream: {e}");
                continue;
            }
        };
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
            tracing::debug!("the server offers no event stream");
            return;
        }
        if !resp.status().is_success() {
            tracing::warn!("the server's event stream answered HTTP {}", resp.status());
            return;
        }
        if let Some(id) = ctx.relay_events(resp.into_body()).await {
            last_event = Some(id);
        }
    }
}
