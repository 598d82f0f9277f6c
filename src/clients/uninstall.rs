//! `uninstall`: turn every mcp-warden-wrapped entry back into what it was.
//!
//! Works from the wrapped entry alone (the original command/URL literal is
//! in its args), so it needs no backup; when a backup exists it is only
//! consulted for the two things a URL entry's args cannot carry: the exact
//! URL key and `type` value.

use std::path::Path;

use super::env::Env;
use super::fsio::backups_of;
use super::install::selected;
use super::jsonc::{parse, Node};
use super::load::load;
use super::locations::{Client, Location};
use super::report::{finish, FileReport, InstallReport, Outcome};
use super::rewrite::{unwrap_http, unwrap_stdio, UrlRestore};
use super::servers::{classify, entries, Kind};
use super::splice::{apply, lit};
use super::ClientError;

#[derive(Debug, Clone, Default)]
pub struct UninstallOptions {
    pub client: Option<Client>,
    pub server: Option<String>,
    pub dry_run: bool,
}

/// Unwraps servers in every matching config file.
pub fn uninstall(env: &Env, opts: &UninstallOptions) -> Result<InstallReport, ClientError> {
    let mut report = InstallReport {
        dry_run: opts.dry_run,
        files: Vec::new(),
    };
    for loc in selected(env, opts.client) {
        if let Some(r) = uninstall_file(&loc, opts.server.as_deref(), opts.dry_run)? {
            report.files.push(r);
        }
    }
    Ok(report)
}

fn uninstall_file(
    loc: &Location,
    only: Option<&str>,
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
            Kind::WrappedStdio { cmd_index, .. } => unwrap_stdio(src, e.node, cmd_index),
            Kind::WrappedHttp { url, url_index } => {
                let restore = restore_from_backup(loc, e.scope.as_deref(), &e.name, &url)
                    .unwrap_or_else(|| default_restore(loc.client, &url));
                unwrap_http(src, e.node, url_index, &restore)
            }
            _ => continue,
        };
        match result {
            Ok(mut ed) => {
                edits.append(&mut ed);
                report.servers.push(e.name.clone());
            }
            Err(why) => report
                .notes
                .push(format!("{}: not unwrapped ({why})", e.name)),
        }
    }
    if edits.is_empty() {
        return Ok(Some(report));
    }
    match apply(src, edits) {
        Ok(new_text) => finish(loc, &loaded, new_text, report, false, dry_run).map(Some),
        Err(why) => {
            report.outcome = Outcome::Invalid(format!("{why}; left untouched"));
            report.servers.clear();
            Ok(Some(report))
        }
    }
}

/// Without a backup: Windsurf spells the key `serverUrl`, everyone else
/// `url`; the transport type is guessed from the URL (`…/sse` is SSE).
fn default_restore(client: Client, url: &str) -> UrlRestore {
    let key = if client == Client::Windsurf {
        "serverUrl"
    } else {
        "url"
    };
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .trim_end_matches('/');
    let ty = if path.ends_with("/sse") {
        "sse"
    } else {
        "http"
    };
    UrlRestore {
        key_text: lit(key),
        type_text: Some(lit(ty)),
    }
}

/// The newest backup that still has this server as the same URL entry
/// gives the exact key and type literals.
fn restore_from_backup(
    loc: &Location,
    scope: Option<&str>,
    name: &str,
    url: &str,
) -> Option<UrlRestore> {
    backups_of(&loc.path)
        .iter()
        .find_map(|b| restore_from_file(b, loc, scope, name, url))
}

fn restore_from_file(
    backup: &Path,
    loc: &Location,
    scope: Option<&str>,
    name: &str,
    url: &str,
) -> Option<UrlRestore> {
    let text = std::fs::read_to_string(backup).ok()?;
    let root = parse(&text, loc.dialect).ok()?;
    let entry = entries(&root, loc.layout)
        .into_iter()
        .find(|e| e.scope.as_deref() == scope && e.name == name)?;
    let Kind::Http {
        url: old_url,
        url_key,
    } = classify(entry.node)
    else {
        return None;
    };
    if old_url != url {
        return None;
    }
    let i = entry.node.member_index(&url_key)?;
    let key_text = text[entry.node.members()[i].key_span.clone()].to_string();
    let type_text = entry
        .node
        .get("type")
        .map(|t: &Node| text[t.span().clone()].to_string());
    Some(UrlRestore {
        key_text,
        type_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::env::{Env, Os};
    use crate::clients::install::{install, InstallOptions};
    use std::fs;

    /// A transport type the URL cannot reveal comes back from the backup;
    /// without one it falls back to the guess.
    #[test]
    fn backup_supplies_exact_url_key_and_type() {
        let src = "{\"mcpServers\": {\"r\": {\"type\": \"streamable-http\", \"url\": \"https://h/x\"}}}\n";
        let dir = tempfile::tempdir().unwrap();
        let env = Env::new(Os::Linux, dir.path().join("h"), dir.path().join("p"));
        let file = dir.path().join("p/.mcp.json");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let opts = InstallOptions {
            client: None,
            server: None,
            dry_run: false,
            binary_path: "/bin/mcp-warden".into(),
        };
        for keep_backup in [true, false] {
            fs::write(&file, src).unwrap();
            for b in backups_of(&file) {
                fs::remove_file(b).unwrap();
            }
            install(&env, &opts).unwrap();
            if !keep_backup {
                for b in backups_of(&file) {
                    fs::remove_file(b).unwrap();
                }
            }
            let wrapped = fs::read_to_string(&file).unwrap();
            let dry = uninstall(
                &env,
                &UninstallOptions {
                    dry_run: true,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(dry.changed_files(), 1);
            assert_eq!(fs::read_to_string(&file).unwrap(), wrapped, "dry run wrote");
            uninstall(&env, &UninstallOptions::default()).unwrap();
            let back = fs::read_to_string(&file).unwrap();
            if keep_backup {
                assert_eq!(back, src);
            } else {
                assert_eq!(back, src.replace("streamable-http", "http"));
            }
        }
    }

    #[test]
    fn default_restore_guesses_sse_and_windsurf_key() {
        let r = default_restore(Client::Windsurf, "https://h/sse/?x=1");
        assert_eq!(
            r,
            UrlRestore {
                key_text: "\"serverUrl\"".into(),
                type_text: Some("\"sse\"".into())
            }
        );
        let r = default_restore(Client::ClaudeCode, "https://h/mcp");
        assert_eq!(
            r,
            UrlRestore {
                key_text: "\"url\"".into(),
                type_text: Some("\"http\"".into())
            }
        );
    }
}
