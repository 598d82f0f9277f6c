//! `install`: rewrite client configs so every stdio server runs under
//! `mcp-warden wrap --server NAME -- CMD ARGS…` and every URL server under
//! `mcp-warden connect URL --server NAME`.
//!
//! Idempotent (wrapped entries are left alone, so a second run changes
//! nothing and makes no backup), backup before every write, invalid files
//! untouched.

use std::path::PathBuf;

use super::env::Env;
use super::jsonc::Node;
use super::load::load;
use super::locations::{locations, Client, Location};
use super::report::{finish, FileReport, InstallReport, Outcome};
use super::rewrite::{wrap_http, wrap_stdio};
use super::servers::{classify, entries, is_warden_binary, Kind};
use super::splice::apply;
use super::ClientError;

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Only this client's files (all clients when `None`).
    pub client: Option<Client>,
    /// Only servers with this config key (all when `None`).
    pub server: Option<String>,
    /// Compute diffs, write nothing.
    pub dry_run: bool,
    /// Absolute path of the mcp-warden executable to put in the configs.
    pub binary_path: PathBuf,
}

/// Wraps servers in every matching config file.
pub fn install(env: &Env, opts: &InstallOptions) -> Result<InstallReport, ClientError> {
    // Clients start servers from their own working directory with their own
    // PATH, so only an absolute path is reliable.
    if !opts.binary_path.is_absolute() {
        return Err(ClientError::RelativeBinary(opts.binary_path.clone()));
    }
    let bin = opts
        .binary_path
        .to_str()
        .ok_or_else(|| ClientError::NonUtf8Binary(opts.binary_path.clone()))?;
    let mut report = InstallReport {
        dry_run: opts.dry_run,
        files: Vec::new(),
    };
    for loc in selected(env, opts.client) {
        if let Some(r) = install_file(&loc, opts.server.as_deref(), bin, opts.dry_run)? {
            report.files.push(r);
        }
    }
    Ok(report)
}

/// Files to consider: all rewritable locations matching the client filter.
pub(super) fn selected(env: &Env, client: Option<Client>) -> Vec<Location> {
    locations(env)
        .into_iter()
        .filter(|l| l.client != Client::Env && client.is_none_or(|c| c == l.client))
        .collect()
}

/// `Ok(None)` when the file does not exist.
fn install_file(
    loc: &Location,
    only: Option<&str>,
    bin: &str,
    dry_run: bool,
) -> Result<Option<FileReport>, ClientError> {
    let loaded = match load(loc) {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(None),
        Err(msg) => return Ok(Some(FileReport::new(loc, Outcome::Invalid(msg)))),
    };
    let src = loaded.text.as_str();
    let mut report = FileReport::new(loc, Outcome::Unchanged);
    let mut edits = Vec::new();
    for e in entries(&loaded.root, loc.layout) {
        if only.is_some_and(|s| s != e.name) {
            continue;
        }
        let result = match classify(e.node) {
            // mcp-warden run some other way (e.g. `serve`): never wrap it
            // in itself.
            Kind::Stdio { command, .. } if is_warden_binary(&command) => {
                report
                    .notes
                    .push(format!("{}: already runs mcp-warden; left alone", e.name));
                continue;
            }
            Kind::Stdio { .. } => wrap_stdio(src, e.node, &e.name, bin),
            Kind::Http { url, url_key } => match connect_cannot_start(e.node, &url) {
                // Never rewrite an entry into a command that cannot start: leave it working.
                Some(why) => Err(why),
                None => wrap_http(src, e.node, &url_key, &e.name, bin),
            },
            Kind::WrappedStdio { .. } | Kind::WrappedHttp { .. } => continue,
            Kind::Unknown => Err("neither a command nor a url".to_string()),
        };
        match result {
            Ok(mut ed) => {
                edits.append(&mut ed);
                report.servers.push(e.name.clone());
            }
            Err(why) => report
                .notes
                .push(format!("{}: not wrapped ({why})", e.name)),
        }
    }
    if edits.is_empty() {
        return Ok(Some(report));
    }
    match apply(src, edits) {
        Ok(new_text) => finish(loc, &loaded, new_text, report, true, dry_run).map(Some),
        Err(why) => {
            report.outcome = Outcome::Invalid(format!("{why}; left untouched"));
            report.servers.clear();
            Ok(Some(report))
        }
    }
}

/// Why `mcp-warden connect URL` could not stand in for this remote entry, if it could not.
fn connect_cannot_start(node: &Node, url: &str) -> Option<String> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Some(format!("{url:?} is not an http(s) URL"));
    }
    if node.get("type").and_then(Node::as_str) == Some("sse") {
        return Some(
            "legacy SSE transport (type \"sse\"): `connect` speaks streamable HTTP only".into(),
        );
    }
    if node.get("headers").is_some() {
        return Some(
            "its `headers` (credentials) cannot be passed through `mcp-warden connect` yet".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::env::Os;
    use std::fs;

    fn setup(cursor_json: &str) -> (tempfile::TempDir, Env) {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        fs::create_dir_all(home.join(".cursor")).unwrap();
        fs::write(home.join(".cursor/mcp.json"), cursor_json).unwrap();
        let env = Env::new(Os::Linux, home, dir.path().join("proj"));
        (dir, env)
    }

    fn opts() -> InstallOptions {
        InstallOptions {
            client: None,
            server: None,
            dry_run: false,
            binary_path: "/opt/mcp-warden".into(),
        }
    }

    #[test]
    fn relative_binary_is_refused() {
        let (_d, env) = setup("{}");
        let o = InstallOptions {
            binary_path: "mcp-warden".into(),
            ..opts()
        };
        assert!(matches!(
            install(&env, &o),
            Err(ClientError::RelativeBinary(_))
        ));
    }

    #[test]
    fn filters_by_server_and_client() {
        let src = r#"{"mcpServers": {"a": {"command": "x"}, "b": {"command": "y"}}}"#;
        let (_d, env) = setup(src);
        let o = InstallOptions {
            client: Some(Client::Windsurf),
            ..opts()
        };
        assert_eq!(install(&env, &o).unwrap().files.len(), 0);
        let o = InstallOptions {
            server: Some("b".into()),
            ..opts()
        };
        let r = install(&env, &o).unwrap();
        assert_eq!(r.files[0].servers, vec!["b"]);
        let text = fs::read_to_string(env.home.unwrap().join(".cursor/mcp.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["mcpServers"]["a"]["command"], "x");
        assert_eq!(v["mcpServers"]["b"]["args"][0], "wrap");
    }

    #[test]
    fn other_warden_commands_are_left_alone() {
        let (_d, env) =
            setup(r#"{"mcpServers": {"w": {"command": "mcp-warden", "args": ["serve"]}}}"#);
        let r = install(&env, &opts()).unwrap();
        assert_eq!(r.files[0].outcome, Outcome::Unchanged);
        assert!(r.files[0].notes[0].contains("already runs mcp-warden"));
    }

    #[test]
    fn unknown_entries_are_noted_not_fatal() {
        let (_d, env) =
            setup(r#"{"mcpServers": {"odd": {"disabled": true}, "ok": {"command": "x"}}}"#);
        let r = install(&env, &opts()).unwrap();
        assert_eq!(r.files[0].outcome, Outcome::Changed);
        assert!(r.files[0].notes[0].starts_with("odd: not wrapped"), "{r}");
        assert!(r.to_string().contains("backup: "), "{r}");
    }

    #[test]
    fn remote_entries_connect_cannot_start_are_left_alone() {
        let (_d, env) = setup(
            r#"{"mcpServers": {
                "remote": {"type": "http", "url": "https://mcp.example.com/mcp"},
                "old": {"type": "sse", "url": "https://old.example.com/sse"},
                "ws": {"url": "wss://ws.example.com/mcp"},
                "auth": {"type": "http", "url": "https://a.example.com/mcp", "headers": {"Authorization": "Bearer x"}}
            }}"#,
        );
        let r = install(&env, &opts()).unwrap();
        assert_eq!(r.files[0].servers, vec!["remote"], "{r}");
        let notes = r.files[0].notes.join("\n");
        for skipped in ["old: not wrapped", "ws: not wrapped", "auth: not wrapped"] {
            assert!(notes.contains(skipped), "{notes}");
        }
    }
}
