//! The accept loop: one hyper HTTP/1.1 connection task per client, with a header read timeout
//! (slow-header clients are cut off), a cap on connections per client address, a reaper for
//! abandoned sessions, and an orderly stop on SIGINT / SIGTERM.

use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use super::slots::Counter;
use super::status::EdgeRefusal;
use super::{handler, Peer, ServeOptions, Shared, Upstream};

/// A client at its connection cap is told to come back after this: by then a slow body has
/// been cut off (or the client's other requests finished).
const CONNECTION_RETRY_MS: u64 = 1000;

/// Run `serve` until a signal. Returns the exit code.
pub fn run(opts: ServeOptions) -> io::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("serve")
        .build()?;
    rt.block_on(serve(opts))
}

async fn serve(opts: ServeOptions) -> io::Result<i32> {
    let listener = TcpListener::bind(&opts.listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", opts.listen)))?;
    let bound = listener.local_addr()?;
    // Tests and operators read the real address here (the port may have been 0).
    eprintln!("mcp-warden: listening on http://{bound}");
    let shared = Arc::new(Shared::new(&opts, bound));
    let per_client: Counter<IpAddr> = Counter::default();
    spawn_reaper(&shared, opts.session_idle);
    opts.health.spawn_probes();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let slot = per_client.take(peer.ip(), opts.max_connections_per_client);
        let shared = shared.clone();
        let timeout = opts.header_read_timeout;
        tokio::spawn(async move {
            let over_cap = slot.is_none();
            let svc = service_fn(move |mut req: Request<Incoming>| {
                let shared = shared.clone();
                req.extensions_mut().insert(Peer(peer.ip()));
                async move {
                    if over_cap {
                        let refusal = EdgeRefusal::too_many(
                            "http.connection_limit",
                            "serve.max_connections_per_client",
                            format!("too many connections from {}; reuse connections or raise [serve] max_connections_per_client", peer.ip()),
                            CONNECTION_RETRY_MS,
                        );
                        let name = shared
                            .routes
                            .get(req.uri().path())
                            .map_or("-", |r| r.name.as_str());
                        return Ok::<_, Infallible>(refusal.answer(&shared, name, "", 0));
                    }
                    Ok(handler::handle(shared, req).await)
                }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .keep_alive(!over_cap);
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(slot);
        });
    }
    eprintln!("mcp-warden: shutting down");
    for s in shared.sessions.drain() {
        s.close();
    }
    for route in shared.routes.values() {
        if let Upstream::Stdio(pool) = &route.upstream {
            pool.stop();
        }
    }
    // Give stdio servers their grace to exit on closed stdin and flush their last lines.
    tokio::time::sleep(Duration::from_millis(200)).await;
    shared.audit.flush()?;
    Ok(0)
}

/// Ends sessions nobody used for `idle` (clients that vanished without DELETE).
fn spawn_reaper(shared: &Arc<Shared>, idle: Duration) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30).min(idle));
        loop {
            tick.tick().await;
            for s in shared.sessions.reap(idle) {
                tracing::info!("session {} idle for {idle:?}: ended", s.id);
                s.close();
            }
        }
    });
}
