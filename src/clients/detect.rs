//! `detect`: list every MCP server configured in any known client, with its
//! wrap, pin and trust status (SPEC §13, §14 `detect --json`).

use serde::Serialize;

use super::env::Env;
use super::load::load;
use super::locations::{locations, Client};
use super::servers::{classify_command, entries, wrapped_server_name, Kind};

/// Capability-pin state of a server (computed elsewhere, by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PinStatus {
    Pinned,
    Drifted,
    None,
}

/// Supplies pin and trust status by server name; pins and trust live
/// outside this module, so the caller plugs them in.
pub trait StatusSource {
    fn pin_status(&self, server: &str) -> PinStatus;
    fn trust(&self, server: &str) -> Option<f64>;
}

/// No pins, no trust data.
pub struct NoStatus;

impl StatusSource for NoStatus {
    fn pin_status(&self, _: &str) -> PinStatus {
        PinStatus::None
    }
    fn trust(&self, _: &str) -> Option<f64> {
        None
    }
}

/// Adapts two closures into a [`StatusSource`].
pub struct FnStatus<P, T>(pub P, pub T);

impl<P: Fn(&str) -> PinStatus, T: Fn(&str) -> Option<f64>> StatusSource for FnStatus<P, T> {
    fn pin_status(&self, server: &str) -> PinStatus {
        (self.0)(server)
    }
    fn trust(&self, server: &str) -> Option<f64> {
        (self.1)(server)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Stdio,
    Http,
}

/// One server as `detect --json` prints it. For wrapped entries the
/// command/url shown is the real server behind mcp-warden.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectedServer {
    pub client: Client,
    pub file: String,
    pub server: String,
    pub transport: Transport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Not in the §14 shape; kept for the table.
    #[serde(skip)]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub wrapped: bool,
    pub pins: PinStatus,
    pub trust: Option<f64>,
    /// Claude Code project path for `projects.<path>.mcpServers` entries.
    #[serde(skip)]
    pub scope: Option<String>,
}

/// Servers plus the files that could not be read (shown as warnings).
#[derive(Debug, Clone, Default)]
pub struct Detection {
    pub servers: Vec<DetectedServer>,
    pub problems: Vec<String>,
}

/// All servers in all client configs; unreadable files are skipped.
pub fn detect(env: &Env, status: &dyn StatusSource) -> Vec<DetectedServer> {
    detect_all(env, status).servers
}

/// Like [`detect`], also reporting files that exist but are invalid.
pub fn detect_all(env: &Env, status: &dyn StatusSource) -> Detection {
    let mut out = Detection::default();
    for loc in locations(env) {
        let loaded = match load(&loc) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(msg) => {
                out.problems.push(msg);
                continue;
            }
        };
        for e in entries(&loaded.root, loc.layout) {
            let kind = super::servers::classify(e.node);
            let warden_name = e
                .node
                .get("args")
                .filter(|_| kind.is_wrapped())
                .map(|a| {
                    a.items()
                        .iter()
                        .filter_map(|n| n.as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
                .and_then(|a| wrapped_server_name(&a));
            let name = warden_name.unwrap_or_else(|| e.name.clone());
            let file = loc.path.to_string_lossy().into_owned();
            match make(loc.client, file, &e.name, &name, kind, status) {
                Some(mut s) => {
                    s.scope = e.scope.clone();
                    out.servers.push(s);
                }
                None => out.problems.push(format!(
                    "{}: server '{}' has neither a command nor a url",
                    loc.path.display(),
                    e.name
                )),
            }
        }
    }
    out.servers.extend(env_servers(env, status));
    out
}

/// `server` is the config key; `status_name` the name pins/trust are kept
/// under (the `--server` of a wrapped entry, else the key).
fn make(
    client: Client,
    file: String,
    server: &str,
    status_name: &str,
    kind: Kind,
    status: &dyn StatusSource,
) -> Option<DetectedServer> {
    let wrapped = kind.is_wrapped();
    let (transport, command, args, url) = match kind {
        Kind::Stdio { command, args } | Kind::WrappedStdio { command, args, .. } => {
            (Transport::Stdio, Some(command), args, None)
        }
        Kind::Http { url, .. } | Kind::WrappedHttp { url, .. } => {
            (Transport::Http, None, Vec::new(), Some(url))
        }
        Kind::Unknown => return None,
    };
    Some(DetectedServer {
        client,
        file,
        server: server.to_string(),
        transport,
        command,
        args,
        url,
        wrapped,
        pins: status.pin_status(status_name),
        trust: status.trust(status_name),
        scope: None,
    })
}

/// `MCP_SERVER_<NAME>=<url or command line>` variables, e.g.
/// `MCP_SERVER_GITHUB="npx -y @modelcontextprotocol/server-github"`.
fn env_servers(env: &Env, status: &dyn StatusSource) -> Vec<DetectedServer> {
    let mut out = Vec::new();
    for (key, value) in &env.vars {
        let Some(suffix) = key.strip_prefix("MCP_SERVER_").filter(|s| !s.is_empty()) else {
            continue;
        };
        let name = suffix.to_ascii_lowercase().replace('_', "-");
        let value = value.trim();
        let kind = if value.starts_with("http://") || value.starts_with("https://") {
            Kind::Http {
                url: value.to_string(),
                url_key: String::new(),
            }
        } else {
            let mut words = split_words(value).into_iter();
            match words.next() {
                Some(cmd) => classify_command(&cmd, &words.collect::<Vec<_>>()),
                None => continue,
            }
        };
        out.extend(make(
            Client::Env,
            format!("env:{key}"),
            &name,
            &name,
            kind,
            status,
        ));
    }
    out
}

/// Whitespace split honouring double and single quotes (no escapes):
/// enough for a command line in an environment variable.
fn split_words(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A plain-text table for people.
pub fn render_table(servers: &[DetectedServer]) -> String {
    if servers.is_empty() {
        return "no MCP servers found\n".to_string();
    }
    let head = [
        "CLIENT",
        "SERVER",
        "TRANSPORT",
        "WRAPPED",
        "PINS",
        "TRUST",
        "TARGET",
        "FILE",
    ];
    let rows: Vec<[String; 8]> = servers
        .iter()
        .map(|s| {
            let target = match (&s.command, &s.url) {
                (Some(c), _) => std::iter::once(c.as_str())
                    .chain(s.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                (None, Some(u)) => u.clone(),
                (None, None) => String::new(),
            };
            let file = match &s.scope {
                Some(p) => format!("{} [project {p}]", s.file),
                None => s.file.clone(),
            };
            [
                s.client.to_string(),
                s.server.clone(),
                format!("{:?}", s.transport).to_lowercase(),
                if s.wrapped { "yes" } else { "no" }.to_string(),
                format!("{:?}", s.pins).to_lowercase(),
                s.trust.map_or("-".to_string(), |t| format!("{t:.2}")),
                target,
                file,
            ]
        })
        .collect();
    let mut widths = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i + 1 == cells.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&head.map(String::from));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::env::Os;

    #[test]
    fn env_variables_are_servers() {
        let mut env = Env::new(Os::Linux, "/nonexistent-home", "/nonexistent-cwd");
        env.vars.insert(
            "MCP_SERVER_GIT_HUB".into(),
            "npx -y \"@scope/server x\"".into(),
        );
        env.vars
            .insert("MCP_SERVER_REMOTE".into(), "https://h/mcp".into());
        env.vars.insert("PATH".into(), "/bin".into());
        let found = detect(&env, &NoStatus);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].server, "git-hub");
        assert_eq!(found[0].command.as_deref(), Some("npx"));
        assert_eq!(found[0].args, vec!["-y", "@scope/server x"]);
        assert_eq!(found[1].url.as_deref(), Some("https://h/mcp"));
        assert_eq!(found[1].file, "env:MCP_SERVER_REMOTE");
    }

    #[test]
    fn json_shape_matches_spec() {
        let s = DetectedServer {
            client: Client::VsCode,
            file: "/p/.vscode/mcp.json".into(),
            server: "fs".into(),
            transport: Transport::Stdio,
            command: Some("npx".into()),
            args: vec!["-y".into()],
            url: None,
            wrapped: true,
            pins: PinStatus::Drifted,
            trust: Some(0.5),
            scope: Some("/p".into()),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"client":"vscode","file":"/p/.vscode/mcp.json","server":"fs",
                "transport":"stdio","command":"npx","wrapped":true,"pins":"drifted","trust":0.5})
        );
        let table = render_table(&[s]);
        assert!(table.starts_with("CLIENT"), "{table}");
        assert!(
            table.contains("npx -y") && table.contains("[project /p]"),
            "{table}"
        );
    }

    #[test]
    fn status_closures_are_used() {
        let st = FnStatus(
            |s: &str| {
                if s == "a" {
                    PinStatus::Pinned
                } else {
                    PinStatus::None
                }
            },
            |_: &str| Some(0.9),
        );
        assert_eq!(st.pin_status("a"), PinStatus::Pinned);
        assert_eq!(st.trust("b"), Some(0.9));
    }
}
