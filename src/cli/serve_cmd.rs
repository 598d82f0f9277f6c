//! `mcp-warden serve [--config F] [--listen ADDR] [--audit-file F]`: Streamable HTTP in front
//! of every `[[servers]]` entry, with the admin port (SPEC §9) beside it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_CONFIG};
use crate::admin::{self, AdminHandle, Metrics};
use crate::audit::AuditLog;
use crate::codec::Limits;
use crate::config::{self, Config};
use crate::pins::Origin;
use crate::pipeline::Guards;
use crate::sig::verifier::{Clock, SystemClock};
use crate::sig::SigningKey;
use crate::transport::http::{
    self, Health, HttpUpstream, Pool, ResponseSigner, Route, ServeOptions, Upstream,
};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Configuration file (default: proxy.toml in the state dir, if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address, overriding `[serve] listen` (port 0 picks a free port; the address is
    /// printed on stderr as `listening on http://ADDR`).
    #[arg(long)]
    listen: Option<String>,
    /// Write the audit trail to this file instead of a new file in the audit dir.
    #[arg(long)]
    audit_file: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> i32 {
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if config.servers.is_empty() {
        return fail(
            EXIT_CONFIG,
            "bad config: servers: serve needs at least one [[servers]] entry",
        );
    }
    let state = state_dir();
    // `[cluster]`: replay claims, rate limits and approvals shared by every replica on Redis.
    let cluster = match config.cluster.enabled().then(|| {
        crate::cluster::Cluster::start(
            &config.cluster,
            &state,
            config.signatures.mode == config::SignatureMode::Enforce,
        )
    }) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return fail(EXIT_CONFIG, &format!("bad config: {e}")),
    };
    let audit = match &args.audit_file {
        Some(f) => AuditLog::open_file(f, config.audit.fsync),
        None => AuditLog::open(
            &config::resolve(&state, &config.audit.dir),
            "serve",
            config.audit.fsync,
        ),
    };
    let audit = match audit {
        Ok(a) => a,
        // Fail closed: a security proxy that cannot keep its audit trail does not run.
        Err(e) => {
            return fail(
                EXIT_CONFIG,
                &format!("cannot open the audit trail under {}: {e}", state.display()),
            )
        }
    };
    if args.audit_file.is_none() {
        super::prune_audit(&config, &audit);
    }
    // The proxy's own key (created on first use) signs audit checkpoints, and responses when
    // `sign_responses` is set; it is published in the capabilities document. Like wrap, serve
    // does not run without it: its trail would not be tamper-evident.
    let identity =
        match crate::identity::load_or_create(&config::resolve(&state, &config.identity.key)) {
            Ok(k) => k,
            Err(e) => return fail(EXIT_CONFIG, &format!("identity key: {e}")),
        };
    audit.set_checkpoints(identity.clone(), config.audit.checkpoint_every);
    audit.start_flusher();
    // OTLP export of the audit trail, spans and metrics, when configured (off otherwise).
    let telemetry = crate::telemetry::start_from_config(
        &config,
        &config::ProcessEnv,
        crate::telemetry::Transport::Tcp,
        &audit,
        "serve",
    );
    let signing = config.identity.sign_responses;
    let metrics = Arc::new(Metrics::new());
    if let Some(c) = &cluster {
        c.health().set_reporter(crate::cluster::Reporter {
            audit: audit.clone(),
            metrics: Some(metrics.clone()),
        });
        // The first look decides the start-up state (and its one alert when down).
        match c.ping() {
            Ok(()) => eprintln!(
                "mcp-warden: cluster store reachable (replica {})",
                c.replica()
            ),
            Err(e) => eprintln!("mcp-warden: cluster store unreachable at start: {e}"),
        }
    }
    let built = Built {
        metrics: &metrics,
        signer: signing.then_some(&identity),
        cluster: cluster.as_ref(),
    };
    let routes = match build_routes(&config, &state, &built) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_CONFIG, &format!("bad config: {e}")),
    };
    let health = Arc::new(Health::new(routes.values()));
    // Held until serve returns: dropping the handle stops the admin port.
    let _admin = admin_port(&config, &state, &metrics, &health, cluster.as_ref());
    let s = &config.serve;
    let opts = ServeOptions {
        listen: args.listen.unwrap_or_else(|| s.listen.clone()),
        allowed_origins: s.allowed_origins.clone(),
        routes,
        audit,
        limits: Limits {
            max_message_bytes: config.proxy.max_message_bytes,
            max_keys_per_object: config.proxy.max_keys_per_object,
            ..Limits::default()
        },
        header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
        max_connections_per_client: s.max_connections_per_client,
        max_streams: s.max_streams,
        max_sessions: s.max_sessions,
        max_sessions_per_client: s.max_sessions_per_client,
        body_timeout: Duration::from_secs(s.body_timeout_secs),
        session_idle: Duration::from_secs(s.session_idle_secs),
        grace: Duration::from_secs(config.proxy.shutdown_grace_secs),
        identity: Some(identity.verifying_key()),
        pins_dir: config::resolve(&state, &config.pins.dir),
        health,
        metrics: Some(metrics),
    };
    let code = match http::run(opts) {
        Ok(code) => code,
        Err(e) => fail(EXIT_CHECK_FAILED, &e.to_string()),
    };
    if let Some(t) = telemetry {
        t.shutdown();
    }
    code
}

/// The admin port (SPEC §9): `/readyz` is ready when every route's policy is loaded and its
/// upstream is reachable. A port already taken (another proxy on this machine) or refused
/// (non-loopback without a token) is reported on stderr and serve runs on without it: the
/// proxy keeps protecting the servers either way.
fn admin_port(
    config: &Config,
    state: &std::path::Path,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
    cluster: Option<&Arc<crate::cluster::Cluster>>,
) -> Option<AdminHandle> {
    let h = health.clone();
    let c = cluster.cloned();
    let ready: admin::Readiness = Arc::new(move || {
        h.check()?;
        match &c {
            Some(c) => c.health().readiness(),
            None => Ok(()),
        }
    });
    let shared = cluster.map(|c| admin::SharedState {
        tickets: c.tickets(),
        trust: c.trust(),
    });
    match admin::spawn_with(config, state, metrics.clone(), ready, shared) {
        Ok((addr, handle)) => {
            // Tests and operators read the real address here (the port may have been 0).
            eprintln!("mcp-warden: admin on http://{addr}");
            Some(handle)
        }
        Err(e) => {
            eprintln!("mcp-warden: admin port not started: {e}");
            None
        }
    }
}

/// What every route shares besides the config.
struct Built<'a> {
    metrics: &'a Arc<Metrics>,
    /// The identity key when `sign_responses` is set.
    signer: Option<&'a SigningKey>,
    cluster: Option<&'a Arc<crate::cluster::Cluster>>,
}

/// One route per server (`route`, default `/mcp/NAME`), plus `/mcp` when there is only one.
fn build_routes(
    config: &Config,
    state: &std::path::Path,
    built: &Built<'_>,
) -> Result<HashMap<String, Arc<Route>>, String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut routes = HashMap::new();
    for (i, s) in config.servers.iter().enumerate() {
        let (origin, upstream) = if s.command.is_empty() {
            let up = HttpUpstream::new(&s.url)
                .map_err(|e| format!("servers[{i}].url: {e}"))?
                .with_headers(&s.headers)
                .map_err(|e| format!("servers[{i}].headers.{e}"))?
                .with_metrics(Some(built.metrics.clone()));
            (
                Origin::Url { url: s.url.clone() },
                Upstream::Http(Arc::new(up)),
            )
        } else {
            let pool = Pool::new(s.command.clone(), config.serve.pool_size);
            (
                Origin::Command {
                    command: s.command.clone(),
                },
                Upstream::Stdio(pool),
            )
        };
        let trust = match built.cluster {
            Some(c) => crate::trust::TrustStore::new(state).with_shared(c.trust()),
            None => crate::trust::TrustStore::new(state),
        };
        let mut guards =
            Guards::from_config_with_trust(config, &s.name, origin, state, clock.clone(), trust)?;
        guards.metrics = Some(built.metrics.clone());
        if let Some(c) = built.cluster {
            // The local replay cache and limiter stay in front of the shared ones.
            guards.verifier = guards
                .verifier
                .take()
                .map(|v| v.with_shared_replay(c.replay()));
            guards.limiter = std::mem::take(&mut guards.limiter).with_shared(c.rates());
            guards.approvals = guards.approvals.take().map(|q| q.with_store(c.tickets()));
        }
        let route = Arc::new(Route {
            name: s.name.clone(),
            upstream,
            guards: Arc::new(guards),
            // The audience of a response signature is the server's name (SPEC §4).
            signer: built
                .signer
                .map(|k| Arc::new(ResponseSigner::new(k.clone(), &s.name))),
        });
        let path = if s.route.is_empty() {
            format!("/mcp/{}", s.name)
        } else {
            s.route.clone()
        };
        if !path.starts_with('/') {
            return Err(format!("servers[{i}].route: must start with /"));
        }
        if routes.insert(path.clone(), route.clone()).is_some() {
            return Err(format!("servers[{i}].route: {path} is used twice"));
        }
        if config.servers.len() == 1 {
            routes.entry("/mcp".into()).or_insert(route);
        }
    }
    Ok(routes)
}
