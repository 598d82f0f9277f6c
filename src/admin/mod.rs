//! The admin port (SPEC §9): probes, Prometheus metrics and the operator API, on its own
//! listener (`[admin] listen`, default 127.0.0.1:9464), separate from the MCP traffic.
//!
//! | file              | job                                                               |
//! |-------------------|-------------------------------------------------------------------|
//! | `mod.rs`          | `spawn`: config → listener on its own thread; `AdminHandle`        |
//! | `server.rs`       | accept loop, Origin / Host / bearer-token gates, routing          |
//! | `metrics.rs`      | `Metrics`: the registry transports feed with `record(&Record)`    |
//! | `prometheus.rs`   | text exposition format 0.0.4                                     |
//! | `api.rs`          | `/api/v1/servers`, `/alerts`, `/approvals` (list, approve, deny)  |
//! | `audit_stream.rs` | `/api/v1/audit/stream`: SSE follow of the audit directory         |
//! | `dashboard.rs`    | the dashboard's endpoints (`/overview`, alerts trail, ack), routing |
//! | `activity.rs`     | the last 24 h of the audit trail: per-hour calls / denials, alerts |
//! | `pins_api.rs`     | held definitions beside their pins; approve / keep held           |
//! | `verify_api.rs`   | `audit verify` of each trail file, last checkpoint                |
//! | `ui.rs`           | the embedded dashboard (`ui/dist/`), CSP and same-origin check    |
//!
//! Use (from `wrap` or `serve`, sync or async callers alike):
//! ```ignore
//! let metrics = Arc::new(admin::Metrics::new());
//! let ready: admin::Readiness = Arc::new(|| Ok(()));
//! let (addr, handle) = admin::spawn(&config, &state, Arc::clone(&metrics), ready)?;
//! // after each `Pipeline::finish(record)`: metrics.record(&record);
//! // around each upstream request: metrics.observe_upstream(elapsed);
//! // at shutdown: handle.stop();
//! ```
//!
//! It runs on its own thread and single-threaded runtime, so a stuck or slow admin client never
//! competes with the relay, and `wrap` (which has no runtime) can use it unchanged.

mod activity;
mod api;
mod audit_stream;
mod dashboard;
pub mod metrics;
mod pins_api;
pub mod prometheus;
mod server;
mod ui;
mod verify_api;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::config::{self, Config};

pub use metrics::Metrics;

/// `/readyz`: true when the policy is loaded and the upstream is reachable (the caller knows).
/// Ready, or why not (named in `/readyz`'s body).
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Stops the admin server when stopped or dropped.
pub struct AdminHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AdminHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The token file used when `[admin] token_file` is not set (in the state dir).
pub const DEFAULT_TOKEN_FILE: &str = "admin.token";

/// The bearer token: from `[admin] token_file` (relative to the state dir) when configured —
/// then it is `explicit` and guards reads too — else `admin.token` in the state dir, created
/// 0600 with 64 random hex characters on first use. Deciding anything always needs it.
fn read_token(config: &Config, state: &Path) -> io::Result<(String, bool)> {
    let configured = config.admin.token_file.trim();
    let explicit = !configured.is_empty();
    let path = config::resolve(
        state,
        if explicit {
            configured
        } else {
            DEFAULT_TOKEN_FILE
        },
    );
    let token = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !explicit => create_token(&path)?,
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("admin.token_file {}: {e}", path.display()),
            ))
        }
    };
    let token = token.trim().to_owned();
    if token.len() < 16 {
        return Err(invalid(format!(
            "admin.token_file {}: the token must be at least 16 characters",
            path.display()
        )));
    }
    Ok((token, explicit))
}

/// Write a fresh token to a private temp file and publish it with `link` (atomic, never
/// overwrites): concurrent first starts agree on one token and nobody reads half of one.
fn create_token(path: &Path) -> io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let token = format!(
        "{}{}",
        crate::session::random_id(),
        crate::session::random_id()
    );
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(token.as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let published = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match published {
        Ok(()) => Ok(token),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::fs::read_to_string(path),
        Err(e) => Err(e),
    }
}

/// The key the admin API signs approval decisions with: the proxy's identity key, which every
/// proxy sharing this state dir trusts. `None`: deciding through the API is unavailable.
fn approval_signer(config: &Config, state: &Path) -> Option<Arc<crate::approval::Signer>> {
    match crate::identity::load_or_create(&config::resolve(state, &config.identity.key)) {
        Ok(key) => Some(Arc::new(crate::approval::Signer {
            name: "admin API".into(),
            key,
        })),
        Err(e) => {
            tracing::warn!("admin API cannot decide approvals: {e}");
            None
        }
    }
}

/// Binds `[admin] listen` and serves on a background thread. Returns the bound address (useful
/// with port 0) and the handle that stops it. Refuses to start on a non-loopback address
/// without a configured bearer token.
pub fn spawn(
    config: &Config,
    state: &Path,
    metrics: Arc<Metrics>,
    readiness: Readiness,
) -> io::Result<(SocketAddr, AdminHandle)> {
    spawn_with(config, state, metrics, readiness, None)
}

/// `[cluster]`: the approval queue and the trust histories every replica shares.
pub struct SharedState {
    pub tickets: Arc<dyn crate::approval::TicketStore>,
    pub trust: Arc<dyn crate::trust::SharedTrust>,
}

/// As [`spawn`], with the approval queue and trust histories in `shared` (`[cluster]`: Redis)
/// instead of the state dir.
pub fn spawn_with(
    config: &Config,
    state: &Path,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shared: Option<SharedState>,
) -> io::Result<(SocketAddr, AdminHandle)> {
    let (tickets, trust) = match shared {
        Some(s) => (Some(s.tickets), Some(s.trust)),
        None => (None, None),
    };
    let trust = match trust {
        Some(t) => crate::trust::TrustStore::new(state).with_shared(t),
        None => crate::trust::TrustStore::new(state),
    };
    let listen = config.admin.listen.trim();
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| invalid(format!("admin.listen {listen:?}: {e} (want IP:PORT)")))?;
    let (token, token_explicit) = read_token(config, state)?;
    let loopback = addr.ip().is_loopback();
    if !loopback && !token_explicit {
        return Err(invalid(format!(
            "admin.listen {addr} is not a loopback address: set admin.token_file to a bearer token \
             so the approval API is not open to the network"
        )));
    }
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("admin.listen {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let signer = approval_signer(config, state);
    let dashboard_key = signer.as_ref().map(|s| s.key.clone());
    let shared = Arc::new(server::Shared {
        metrics,
        readiness,
        token,
        token_explicit,
        loopback,
        signer,
        audit_dir: config::resolve(state, &config.audit.dir),
        trust: trust.clone(),
        tickets: tickets.unwrap_or_else(|| {
            Arc::new(crate::approval::FileTickets {
                dir: config::resolve(state, "approvals"),
            })
        }),
        servers: config.servers.iter().map(|s| s.name.clone()).collect(),
        dashboard: Arc::new(dashboard::Dashboard::new(
            config,
            state,
            dashboard_key,
            trust,
        )),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => server::serve(l, shared, stop_rx).await,
                    Err(e) => tracing::error!("admin listener: {e}"),
                }
            });
        })?;
    tracing::info!("admin port listening on {bound}");
    Ok((
        bound,
        AdminHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
    ))
}
