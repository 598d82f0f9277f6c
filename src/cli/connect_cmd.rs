//! `mcp-warden connect URL [--server NAME] [--key FILE] [--config F]`

use std::path::PathBuf;
use std::time::Duration;

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_CONFIG, EXIT_USAGE};
use crate::audit::AuditLog;
use crate::codec::Limits;
use crate::config::{self, Config};
use crate::connect;
use crate::sig::keys;

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// The server's streamable HTTP endpoint, e.g. http://gateway:8080/mcp/filesystem.
    url: String,
    /// Server name: the audience of every signature and the pinned key's name. Default: the
    /// `[[servers]]` entry with this url, else the URL's last path segment (or its host).
    #[arg(long)]
    server: Option<String>,
    /// Private key that signs requests (default: `[identity] key`, identity.pem in the state dir).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Configuration file (default: proxy.toml in the state dir, if present).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// The server name when `--server` is not given.
fn derive_server(config: &Config, url: &str) -> String {
    if let Some(s) = config.servers.iter().find(|s| s.url == url) {
        return s.name.clone();
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.split(['?', '#']).next().unwrap_or("");
    match path.rsplit('/').find(|s| !s.is_empty()) {
        Some(seg) if seg != "mcp" && seg != "sse" => seg.to_owned(),
        _ => {
            // Host without port: a name must be usable as a file name.
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let host = host.strip_prefix('[').map_or_else(
                || host.split(':').next().unwrap_or(host),
                |h| h.split(']').next().unwrap_or(h),
            );
            host.replace(':', "_")
        }
    }
}

pub fn run(args: ConnectArgs) -> i32 {
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let server = args
        .server
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
    audit.start_flusher();
    // OTLP export of the audit trail, spans and metrics, when configured (off otherwise).
    let telemetry = crate::telemetry::start_from_config(
        &config,
        &config::ProcessEnv,
        crate::telemetry::Transport::Tcp,
        &audit,
        &server,
    );
    let opts = connect::Options {
        url: args.url,
        server,
        key,
        pinned_key,
        tls,
        state,
        window_secs: config.signatures.window_secs,
        limits: Limits {
            max_message_bytes: config.proxy.max_message_bytes,
            max_keys_per_object: config.proxy.max_keys_per_object,
            ..Limits::default()
        },
        grace: Duration::from_secs(config.proxy.shutdown_grace_secs),
        audit,
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
        assert_eq!(derive_server(&c, "http://127.0.0.1:3001/mcp"), "127.0.0.1");
        assert_eq!(derive_server(&c, "http://[::1]:3001/mcp?x=1"), "__1");
        assert_eq!(derive_server(&c, "http://host"), "host");
    }
}
