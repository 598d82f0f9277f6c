//! `mcp-warden connect URL [--name NAME] [--key FILE] [--config F]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_CONFIG, EXIT_USAGE};
use crate::audit::AuditLog;
use crate::config::{self, Config};
use crate::connect;
use crate::pipeline::{Guards, Pipeline};
use crate::sig::keys;
use crate::sig::verifier::{Clock, SystemClock};

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// The server's streamable HTTP endpoint, e.g. http://gateway:8080/mcp/filesystem.
    url: String,
    /// Server name: policy, pins, audit records, the audience of every signature and the
    /// pinned key's name. Default: the `[[servers]]` entry with this url, else the URL's last
    /// meaningful path segment, else the host's distinctive label (mcp.notion.com → notion).
    #[arg(long, visible_alias = "server")]
    name: Option<String>,
    /// Private key that signs requests (default: `[identity] key`, identity.pem in the state dir).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Configuration file (default: proxy.toml in the state dir, if present).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Path segments and host labels that say nothing about which server it is.
const GENERIC: &[&str] = &["mcp", "sse", "api", "v1", "v2", "www", "http", "stream"];

/// The server name when `--name` is not given: the `[[servers]]` entry with this url; else the
/// URL's last path segment that names something (`/mcp/filesystem` → `filesystem`; `mcp`,
/// `sse`, `v1`… name nothing); else the host: a DNS name by its first label that is not generic
/// (`mcp.notion.com` → `notion`, `api.githubcopilot.com` → `githubcopilot`), an address or a
/// one-label host with its port (`127.0.0.1_3001`: two local servers must not share pins).
/// The result is always usable as a file name (pins, audit, trust are keyed by it).
fn derive_server(config: &Config, url: &str) -> String {
    if let Some(s) = config.servers.iter().find(|s| s.url == url) {
        return s.name.clone();
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.split(['?', '#']).next().unwrap_or("");
    let generic = |s: &str| GENERIC.contains(&s.to_ascii_lowercase().as_str());
    if let Some(seg) = path.rsplit('/').find(|s| !s.is_empty() && !generic(s)) {
        return file_safe(seg);
    }
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once(']').unwrap_or((v6, ""));
            (h, p.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    let is_address = host.contains(':') || labels.iter().all(|l| l.parse::<u8>().is_ok());
    if !is_address && labels.len() > 1 {
        // The last label is the top-level domain; the first non-generic one before it names it.
        if let Some(label) = labels[..labels.len() - 1].iter().find(|l| !generic(l)) {
            return file_safe(label);
        }
    }
    match port {
        Some(p) if !p.is_empty() => file_safe(&format!("{host}_{p}")),
        _ => file_safe(host),
    }
}

/// Keeps letters, digits, `.`, `-`, `_`; anything else becomes `_`.
fn file_safe(s: &str) -> String {
    let out = crate::fsutil::safe_name(s, &['.', '-', '_'], '_');
    match out.trim_matches('.') {
        "" => "server".into(),
        t => t.to_owned(),
    }
}

pub fn run(args: ConnectArgs) -> i32 {
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let server = args
        .name
        .clone()
        .unwrap_or_else(|| derive_server(&config, &args.url));
    let state = state_dir();
    let key_path = args
        .key
        .clone()
        .unwrap_or_else(|| config::resolve(&state, &config.identity.key));
    // The configured identity key is created on first use, like `wrap`'s; a key named with
    // --key must exist.
    let loaded = if args.key.is_some() {
        std::fs::read_to_string(&key_path)
            .map_err(|e| format!("cannot read the signing key {}: {e}", key_path.display()))
            .and_then(|pem| {
                keys::signing_key_from_pem(&pem).map_err(|e| format!("{}: {e}", key_path.display()))
            })
    } else {
        crate::identity::load_or_create(&key_path)
            .map_err(|e| format!("identity key {}: {e}", key_path.display()))
    };
    let key = match loaded {
        Ok(k) => k,
        Err(e) => return fail(EXIT_CONFIG, &e),
    };
    // The proxy's own key signs audit checkpoints, as in `wrap` (created on first use above
    // unless --key named another one).
    let identity = if args.key.is_some() {
        crate::identity::load_or_create(&config::resolve(&state, &config.identity.key))
    } else {
        Ok(key.clone())
    };
    let entry = config.server(&server);
    let file = |f: Option<&String>| {
        f.map(|f| f.trim())
            .filter(|f| !f.is_empty())
            .map(|f| config::resolve(&state, f))
    };
    let tls = crate::connect::TlsFiles {
        ca_file: file(entry.map(|e| &e.tls_ca_file)),
        client_cert: file(entry.map(|e| &e.tls_client_cert)),
        client_key: file(entry.map(|e| &e.tls_client_key)),
    };
    let pinned_key = config
        .server(&server)
        .map(|s| s.public_key.trim().to_owned())
        .filter(|k| !k.is_empty());
    let audit_dir = config::resolve(&state, &config.audit.dir);
    let audit = match AuditLog::open(&audit_dir, &server, config.audit.fsync) {
        Ok(a) => a,
        // Fail closed, like wrap: no audit trail, no relay.
        Err(e) => {
            return fail(
                EXIT_CONFIG,
                &format!(
                    "cannot open the audit trail under {}: {e}",
                    audit_dir.display()
                ),
            )
        }
    };
    super::prune_audit(&config, &audit);
    match identity {
        Ok(k) => audit.set_checkpoints(k, config.audit.checkpoint_every),
        Err(e) => return fail(EXIT_CONFIG, &format!("identity key: {e}")),
    }
    audit.start_flusher();
    // OTLP export of the audit trail, spans and metrics, when configured (off otherwise).
    let telemetry = crate::telemetry::start_from_config(
        &config,
        &config::ProcessEnv,
        crate::telemetry::Transport::Tcp,
        &audit,
        &server,
    );
    let limits = super::limits(&config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let origin = crate::pins::Origin::Url {
        url: args.url.clone(),
    };
    let mut guards = match Guards::from_config(&config, &server, origin, &state, clock) {
        Ok(g) => g,
        Err(e) => return fail(EXIT_CONFIG, &format!("bad config: {e}")),
    };
    // The client on stdin is the local desktop process, as in `wrap`; but here `connect` signs
    // every request itself (header scheme), and `signatures.mode` governs the server's results
    // (pin.rs): client messages are not expected to carry signatures of their own.
    guards.verifier = None;
    // A modern request the proxy would retry itself needs the stdio relay's own request
    // channel; over HTTP it is left to the client (as for `serve`'s HTTP upstreams).
    guards.retry_input_requests = false;
    if let Some(file) = &args.config {
        guards.proxy_state.protect(file);
    }
    let (_admin, admin_note) = super::wrap_cmd::admin_port(&config, &state, &mut guards);
    let doing = format!("connect {server} ({})", args.url);
    super::report_start(&config, &state, &doing, audit.path(), &admin_note);
    let pipeline = Arc::new(Pipeline::new(&server, limits, audit, Arc::new(guards)));
    let opts = connect::Options {
        url: args.url,
        server,
        key,
        pinned_key,
        tls,
        headers: entry.map(|e| e.headers.clone()).unwrap_or_default(),
        state,
        window_secs: config.signatures.window_secs,
        grace: Duration::from_secs(config.proxy.shutdown_grace_secs),
        pipeline,
        mode: config.signatures.mode,
    };
    let code = match connect::run(opts) {
        Ok(code) => code,
        Err(e) if e.starts_with("bad URL") || e.starts_with("URL ") => fail(EXIT_USAGE, &e),
        Err(e) => fail(EXIT_CHECK_FAILED, &e),
    };
    if let Some(t) = telemetry {
        t.shutdown();
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_urls() {
        let c = Config::default();
        assert_eq!(
            derive_server(&c, "http://gw:8080/mcp/filesystem"),
            "filesystem"
        );
        assert_eq!(
            derive_server(&c, "http://127.0.0.1:3001/mcp"),
            "127.0.0.1_3001"
        );
        assert_eq!(derive_server(&c, "http://[::1]:3001/mcp?x=1"), "__1_3001");
        assert_eq!(derive_server(&c, "http://host"), "host");
        assert_eq!(derive_server(&c, "https://mcp.notion.com/mcp"), "notion");
        assert_eq!(
            derive_server(&c, "https://api.githubcopilot.com/mcp/"),
            "githubcopilot"
        );
        assert_eq!(
            derive_server(&c, "https://mcp.example.com/v1/sse"),
            "example"
        );
        assert_eq!(
            derive_server(&c, "http://localhost:8080/"),
            "localhost_8080"
        );
    }
}
