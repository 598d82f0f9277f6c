//! `serve`: Streamable HTTP in front of each configured server (SPEC §1, §10). Every message
//! crosses the same `Pipeline` as in `wrap`; this module only moves bytes between HTTP and the
//! upstream and acts on verdicts.
//!
//! | file                | job                                                          |
//! |---------------------|--------------------------------------------------------------|
//! | `server.rs`         | accept loop, header timeout, per-client connection cap, reaper |
//! | `handler.rs`        | one request: edge checks, routing, GET / DELETE, sessions      |
//! | `admission.rs`      | the one admission rule: proof (either scheme), caps, ownership |
//! | `slots.rs`          | per-key counters (connections per address, sessions per client) |
//! | `post.rs`           | a POSTed message of the legacy era through pipeline and upstream |
//! | `legacy_sse.rs`     | 2024-11-05 HTTP+SSE: `ROUTE/sse` stream, `ROUTE/messages` POSTs |
//! | `modern.rs`         | 2026-07-28: header checks, one pipeline and process per request |
//! | `edge.rs`           | Origin / Host (DNS rebinding), declared size, duplicate headers |
//! | `status.rs`         | JSON-RPC code → HTTP status, responses, edge-refusal audit     |
//! | `body.rs`           | capped request bodies; response body with keep-alive and hooks |
//! | `sse.rs`            | SSE event parser and writer                                   |
//! | `session.rs`        | session table: our ids ↔ pipeline and upstream                |
//! | `routes.rs`         | which stream a stdio server's message goes to                 |
//! | `upstream.rs`       | the upstream, either kind, the one place they are told apart: route (stateless requests, readiness, stop) and session (open, send, events, close) |
//! | `sole.rs`           | the modern era's process per request: prefetch, answer, cancel |
//! | `stdio_upstream.rs` | one stdio process per session: writer, reader, keeper threads |
//! | `pool.rs`           | pre-started stdio processes                                   |
//! | `http_upstream.rs`  | hyper client and the headers an upstream may see              |
//! | `relay.rs`          | an HTTP upstream's JSON / SSE answer through `from_server`    |
//! | `signer.rs`         | response signatures (`sign_responses`); `Egress`: a server message's last step |
//! | `capabilities.rs`   | `GET [ROUTE]/.well-known/mcp/capabilities`: key, pinned tools  |
//! | `health.rs`         | `/readyz`: policy loaded, upstream reachable or pool warm      |
//!
//! Every verdict is acted on through `pipeline::deliver` (one record per message, durable ones
//! first); a server → client message's final bytes leave through `Egress::finish` (signing),
//! from `StdioSession::act` or `Relay::verdict`.

mod admission;
mod ask_stream;
mod body;
mod capabilities;
mod edge;
mod handler;
mod health;
mod http_upstream;
mod legacy_sse;
mod modern;
mod pool;
mod post;
mod prefetch;
mod reap;
mod relay;
mod retry;
mod routes;
mod server;
mod session;
mod signer;
mod slots;
mod sole;
/// Also the `connect` client's parser for upstream event streams.
pub mod sse;
mod status;
mod stdio_upstream;
mod upstream;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::admin::Metrics;
use crate::audit::AuditLog;
use crate::codec::Limits;
use crate::pipeline::Guards;
use crate::sig::VerifyingKey;

pub use health::Health;
pub use http_upstream::HttpUpstream;
pub use pool::Pool;
pub use server::{run, serve};
pub use signer::ResponseSigner;
pub use upstream::Upstream;

/// One configured server behind one or more paths.
pub struct Route {
    /// The `[[servers]]` name: audit, policy, pins, and the signature audience.
    pub name: String,
    pub upstream: Upstream,
    pub guards: Arc<Guards>,
    /// Signs the results sent to clients (`[identity] sign_responses`); `None`: bytes untouched.
    pub signer: Option<Arc<ResponseSigner>>,
}

/// Everything `serve` runs with, built by the CLI from the config.
pub struct ServeOptions {
    pub listen: String,
    pub allowed_origins: Vec<String>,
    /// Path → route (`/mcp/NAME`, the configured `route`, and `/mcp` when there is one server).
    pub routes: HashMap<String, Arc<Route>>,
    pub audit: Arc<AuditLog>,
    pub limits: Limits,
    pub header_read_timeout: Duration,
    pub max_connections_per_client: usize,
    pub max_streams: usize,
    pub max_sessions: usize,
    /// Sessions and stdio processes one client identity (key, or address when unsigned) holds.
    pub max_sessions_per_client: usize,
    /// A request body not complete within this time is answered 408.
    pub body_timeout: Duration,
    pub session_idle: Duration,
    /// Wait this long after closing a stdio server's stdin before signalling it.
    pub grace: Duration,
    /// The proxy's identity key, published in the capabilities document.
    pub identity: Option<VerifyingKey>,
    /// Where the pin files are (`[pins] dir`): the capabilities document lists pinned tools.
    pub pins_dir: PathBuf,
    /// Readiness of every route; HTTP upstreams are probed on the serve runtime.
    pub health: Arc<Health>,
    /// The admin port's registry: edge refusals are counted here (pipelines count the rest).
    pub metrics: Option<Arc<Metrics>>,
}

/// The client's address, put into each request's extensions by the accept loop.
#[derive(Clone, Copy)]
pub(crate) struct Peer(pub IpAddr);

/// State shared by every connection.
pub(crate) struct Shared {
    pub routes: HashMap<String, Arc<Route>>,
    pub audit: Arc<AuditLog>,
    pub limits: Limits,
    pub edge: edge::Edge,
    pub sessions: Arc<session::SessionTable>,
    pub max_sessions: usize,
    pub max_sessions_per_client: usize,
    /// Sessions and processes held per client identity.
    pub clients: slots::Counter<String>,
    pub body_timeout: Duration,
    pub grace: Duration,
    pub identity: Option<VerifyingKey>,
    pub pins_dir: PathBuf,
    pub metrics: Option<Arc<Metrics>>,
    pub legacy: legacy_sse::LegacyStreams,
    streams: Arc<AtomicUsize>,
    max_streams: usize,
}

impl Shared {
    fn new(opts: &ServeOptions, bound: SocketAddr) -> Shared {
        Shared {
            routes: opts.routes.clone(),
            audit: opts.audit.clone(),
            limits: opts.limits,
            edge: edge::Edge::new(bound, &opts.allowed_origins),
            sessions: Arc::new(session::SessionTable::default()),
            max_sessions: opts.max_sessions,
            max_sessions_per_client: opts.max_sessions_per_client,
            clients: slots::Counter::default(),
            body_timeout: opts.body_timeout,
            grace: opts.grace,
            identity: opts.identity,
            pins_dir: opts.pins_dir.clone(),
            metrics: opts.metrics.clone(),
            legacy: legacy_sse::LegacyStreams::default(),
            streams: Arc::new(AtomicUsize::new(0)),
            max_streams: opts.max_streams,
        }
    }

    /// Take one of the SSE stream slots; the returned hook gives it back. `None`: all taken.
    pub fn stream_slot(&self) -> Option<Box<dyn FnOnce() + Send>> {
        let n = self.streams.fetch_add(1, Ordering::AcqRel);
        let streams = self.streams.clone();
        if n >= self.max_streams {
            streams.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Box::new(move || {
            streams.fetch_sub(1, Ordering::AcqRel);
        }))
    }
}
