//! `mcp-warden wrap [--server NAME] [--config F] [--audit-file F] -- CMD ARGS…`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_CONFIG};
use crate::audit::AuditLog;
use crate::config;
use crate::pipeline::{Guards, Pipeline};
use crate::sig::verifier::{Clock, SystemClock};
use crate::transport::{child, stdio};

#[derive(clap::Args)]
pub struct WrapArgs {
    /// Server name (policy, pins, audience); default: derived from the command.
    #[arg(long)]
    server: Option<String>,
    /// Configuration file (default: proxy.toml in the state dir, if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write the audit trail to this file instead of a new file in the audit dir.
    #[arg(long)]
    audit_file: Option<PathBuf>,
    /// The server command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn run(args: WrapArgs) -> i32 {
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let server = args
        .server
        .unwrap_or_else(|| child::derive_server_name(&args.command));
    let state = state_dir();
    let audit = match &args.audit_file {
        Some(f) => AuditLog::open_file(f, config.audit.fsync),
        None => AuditLog::open(
            &config::resolve(&state, &config.audit.dir),
            &server,
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
    // The proxy's own key signs audit checkpoints (created on first use).
    match crate::identity::load_or_create(&config::resolve(&state, &config.identity.key)) {
        Ok(key) => audit.set_checkpoints(key, config.audit.checkpoint_every),
        Err(e) => return fail(EXIT_CONFIG, &format!("identity key: {e}")),
    }
    audit.start_flusher();
    // OTLP export of the audit trail, spans and metrics, when configured (off otherwise).
    let telemetry = crate::telemetry::start_from_config(
        &config,
        &config::ProcessEnv,
        crate::telemetry::Transport::Pipe,
        &audit,
        &server,
    );
    let limits = super::limits(&config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let origin = crate::pins::Origin::Command {
        command: args.command.clone(),
    };
    let mut guards = match Guards::from_config(&config, &server, origin, &state, clock) {
        Ok(g) => g,
        Err(e) => return fail(EXIT_CONFIG, &format!("bad config: {e}")),
    };
    // builtin.proxy_state: files named on the command line are the proxy's state too.
    for file in [&args.config, &args.audit_file].into_iter().flatten() {
        guards.proxy_state.protect(file);
    }
    let (_admin, admin_note) = admin_port(&config, &state, &mut guards);
    let doing = format!("wrap {server}");
    super::report_start(&config, &state, &doing, audit.path(), &admin_note);
    let pipeline = Arc::new(Pipeline::new(&server, limits, audit, Arc::new(guards)));
    let opts = stdio::WrapOptions {
        command: args.command,
        grace: Duration::from_secs(config.proxy.shutdown_grace_secs),
        sandbox: if config.proxy.sandbox_child {
            child::state_sandbox(&state)
        } else {
            None
        },
    };
    let code = match stdio::run(
        opts,
        pipeline,
        stdio::ClientIn::Stdin,
        stdio::ClientOut::Stdout,
    ) {
        Ok(code) => code,
        Err(e) => fail(EXIT_CHECK_FAILED, &e.to_string()),
    };
    if let Some(t) = telemetry {
        t.shutdown();
    }
    code
}

/// The admin port for this process. Desktop hosts start several `wrap` processes on one
/// machine and only one can hold the port: the others run without it (a note on stderr when
/// debugging), which costs nothing but their own `/metrics`. Any other error (e.g. a
/// non-loopback address without a token) is reported on stderr and the port stays closed: the
/// proxy itself keeps protecting the server.
pub(super) fn admin_port(
    config: &config::Config,
    state: &std::path::Path,
    guards: &mut Guards,
) -> (Option<crate::admin::AdminHandle>, String) {
    let metrics = Arc::new(crate::admin::Metrics::new());
    let ready: crate::admin::Readiness = Arc::new(|| Ok(()));
    match crate::admin::spawn(config, state, metrics.clone(), ready) {
        Ok((addr, handle)) => {
            guards.metrics = Some(metrics);
            (Some(handle), format!("admin http://{addr}"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => (
            None,
            format!("admin port {} held by another process", config.admin.listen),
        ),
        Err(e) => (None, format!("admin port not started: {e}")),
    }
}
