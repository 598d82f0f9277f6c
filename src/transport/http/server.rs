//! The accept loop: one hyper HTTP/1.1 connection task per client, with a header read timeout
//! (slow-header clients are answered 408 and cut off), a cap on connections per client
//! address (429, -32016), a reaper for abandoned sessions, and an orderly stop on SIGINT /
//! SIGTERM. Each request carries its client's address (`Peer`) for the per-client caps.

use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

use super::slots::Counter;
use super::status::EdgeRefusal;
use super::{handler, Peer, ServeOptions, Shared, Upstream};

/// A client at its connection cap is told to come back after this: by then a slow body has
/// been cut off (or the client's other requests finished).
const CONNECTION_RETRY_MS: u64 = 1000;
/// hyper's header timer runs this much after ours, which answers the first request's 408.
const HYPER_TIMER_LAG: Duration = Duration::from_secs(1);

/// Run `serve` on `opts.listen` until SIGINT or SIGTERM. Returns the exit code.
pub fn run(opts: ServeOptions) -> io::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("serve")
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(&opts.listen).await.map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {}: {e}", opts.listen))
        })?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        serve(listener, opts, stop).await
    })
}

/// Serve on `listener` until `shutdown` completes, then end every session and flush the audit
/// trail. What `run` does once bound; startable in-process (tests need no process, no port
/// race: bind port 0 and read the address from the listener).
pub async fn serve(
    listener: TcpListener,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<i32> {
    let bound = listener.local_addr()?;
    // Tests and operators read the real address here (the port may have been 0).
    eprintln!("mcp-warden: listening on http://{bound}");
    let shared = Arc::new(Shared::new(&opts, bound));
    let per_client: Counter<IpAddr> = Counter::default();
    spawn_reaper(&shared, opts.session_idle);
    opts.health.spawn_probes();
    tokio::pin!(shutdown);
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
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let slot = per_client.take(peer.ip(), opts.max_connections_per_client);
        let shared = shared.clone();
        let timeout = opts.header_read_timeout;
        tokio::spawn(async move {
            let over_cap = slot.is_none();
            let started = Arc::new(AtomicBool::new(false));
            let (svc_shared, svc_started) = (shared.clone(), started.clone());
            let svc = service_fn(move |mut req: Request<Incoming>| {
                svc_started.store(true, Ordering::Release);
                let shared = svc_shared.clone();
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
            // The first request's headers are timed here (so a slow client can still be told
            // 408); hyper's own timer, a little later, covers the requests after it.
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeout + HYPER_TIMER_LAG)
                .keep_alive(!over_cap);
            let mut conn = builder.serve_connection(TokioIo::new(stream), svc);
            let first = tokio::time::sleep(timeout);
            tokio::pin!(first);
            let ended = tokio::select! {
                r = &mut conn => Some(r),
                _ = &mut first => None,
            };
            let ended = match ended {
                Some(r) => r,
                None if !started.load(Ordering::Acquire) => {
                    let io = conn.into_parts().io.into_inner();
                    header_timeout(&shared, io, timeout).await;
                    return;
                }
                None => conn.await,
            };
            if let Err(e) = ended {
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

/// A client that has not sent its first request's headers in time: 408, audited, closed.
async fn header_timeout(shared: &Shared, mut io: TcpStream, timeout: Duration) {
    let body = EdgeRefusal::new(
        StatusCode::REQUEST_TIMEOUT,
        "http.timeout",
        "serve.header_read_timeout_ms",
        format!(
            "the request headers did not arrive within {timeout:?} (serve.header_read_timeout_ms)"
        ),
    )
    .audit(shared, "-", "", 0);
    let mut out = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend(body);
    // A client that does not read its answer either is not waited for.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        io.write_all(&out).await?;
        io.shutdown().await
    })
    .await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tokio::io::AsyncReadExt;

    fn options(dir: &std::path::Path) -> ServeOptions {
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            allowed_origins: Vec::new(),
            routes: HashMap::new(),
            audit: crate::audit::AuditLog::open_file(
                &dir.join("a.jsonl"),
                crate::audit::Fsync::Never,
            )
            .unwrap(),
            limits: crate::codec::Limits::default(),
            header_read_timeout: Duration::from_secs(5),
            max_connections_per_client: 8,
            max_streams: 8,
            max_sessions: 8,
            max_sessions_per_client: 8,
            body_timeout: Duration::from_secs(5),
            session_idle: Duration::from_secs(60),
            grace: Duration::from_millis(10),
            identity: None,
            pins_dir: dir.join("pins"),
            health: Arc::new(super::super::Health::new(std::iter::empty())),
            metrics: None,
        }
    }

    /// `serve` runs in-process on a listener the test bound, answers, and returns when told.
    #[tokio::test]
    async fn serves_in_process_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, options(dir.path()), async {
            let _ = stopped.await;
        }));
        let mut c = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /nowhere HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
        c.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        stop.send(()).unwrap();
        assert_eq!(server.await.unwrap().unwrap(), 0);
    }
}
