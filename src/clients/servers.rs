//! Finding server entries inside a parsed config, and telling what each one
//! is: a plain stdio server, a URL server, or one already run under
//! `mcp-warden wrap` / `mcp-warden connect`.

use super::jsonc::Node;
use super::locations::Layout;

/// One server entry in a file.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// `None` for user-level maps; the project path for Claude Code projects.
    pub scope: Option<String>,
    pub name: String,
    /// The entry's object node (its value in the servers map).
    pub node: &'a Node,
}

/// Every server entry in the document, in file order.
pub fn entries(root: &Node, layout: Layout) -> Vec<Entry<'_>> {
    let mut maps: Vec<(Option<String>, &Node)> = Vec::new();
    match layout {
        Layout::McpServers => maps.extend(root.get("mcpServers").map(|m| (None, m))),
        Layout::Servers => maps.extend(root.get("servers").map(|m| (None, m))),
        Layout::VsCodeSettings => {
            maps.extend(
                root.get("mcp")
                    .and_then(|m| m.get("servers"))
                    .map(|m| (None, m)),
            );
            maps.extend(root.get("mcp.servers").map(|m| (None, m)));
        }
        Layout::ClaudeCodeUser => {
            maps.extend(root.get("mcpServers").map(|m| (None, m)));
            if let Some(projects) = root.get("projects") {
                for p in projects.members() {
                    maps.extend(p.value.get("mcpServers").map(|m| (Some(p.key.clone()), m)));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (scope, map) in maps {
        for (i, m) in map.members().iter().enumerate() {
            // Duplicate keys: the client sees only the last one.
            let shadowed = map.members()[i + 1..]
                .iter()
                .any(|later| later.key == m.key);
            if matches!(m.value, Node::Object { .. }) && !shadowed {
                out.push(Entry {
                    scope: scope.clone(),
                    name: m.key.clone(),
                    node: &m.value,
                });
            }
        }
    }
    out
}

/// What a server entry does.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Stdio {
        command: String,
        args: Vec<String>,
    },
    /// `url_key` is `url` or `serverUrl` (Windsurf).
    Http {
        url: String,
        url_key: String,
    },
    /// `mcp-warden wrap … -- CMD ARGS`; `cmd_index` is CMD's position in args.
    WrappedStdio {
        command: String,
        args: Vec<String>,
        cmd_index: usize,
    },
    /// `mcp-warden connect URL …`; `url_index` is URL's position in args.
    WrappedHttp {
        url: String,
        url_index: usize,
    },
    /// Neither a command nor a URL we understand.
    Unknown,
}

impl Kind {
    pub fn is_wrapped(&self) -> bool {
        matches!(self, Kind::WrappedStdio { .. } | Kind::WrappedHttp { .. })
    }
}

/// Keys that hold a remote server's URL, in the order we look for them.
pub const URL_KEYS: [&str; 2] = ["url", "serverUrl"];

/// Classifies an entry node.
pub fn classify(entry: &Node) -> Kind {
    if let Some(command) = entry.get("command").and_then(Node::as_str) {
        let args: Vec<String> = entry
            .get("args")
            .map(|a| a.items().iter().map(arg_text).collect())
            .unwrap_or_default();
        return classify_command(command, &args);
    }
    for key in URL_KEYS {
        if let Some(url) = entry.get(key).and_then(Node::as_str) {
            return Kind::Http {
                url: url.to_string(),
                url_key: key.to_string(),
            };
        }
    }
    Kind::Unknown
}

/// Classifies a command line (also used for `MCP_SERVER_*` variables).
pub fn classify_command(command: &str, args: &[String]) -> Kind {
    if is_warden_binary(command) {
        if let Some(w) = parse_wrap(args) {
            return w;
        }
    }
    Kind::Stdio {
        command: command.to_string(),
        args: args.to_vec(),
    }
}

/// Non-string args (rare, but seen) are shown as their JSON text.
fn arg_text(n: &Node) -> String {
    match n {
        Node::Str { value, .. } => value.clone(),
        other => other.to_value().to_string(),
    }
}

/// True when `command` names an mcp-warden executable (any directory,
/// either slash style, optional `.exe`).
pub fn is_warden_binary(command: &str) -> bool {
    let base = command
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(command)
        .to_ascii_lowercase();
    let base = base.strip_suffix(".exe").unwrap_or(&base);
    base == "mcp-warden"
}

/// Reads the arguments of an mcp-warden invocation: `wrap [opts] -- CMD …`
/// or `connect URL [opts]` (options may also come before the URL).
pub fn parse_wrap(args: &[String]) -> Option<Kind> {
    match args.first().map(String::as_str) {
        Some("wrap") => {
            let sep = args.iter().position(|a| a == "--")?;
            let cmd_index = sep + 1;
            let command = args.get(cmd_index)?.clone();
            Some(Kind::WrappedStdio {
                command,
                args: args[cmd_index + 1..].to_vec(),
                cmd_index,
            })
        }
        Some("connect") => {
            let url_index = args
                .iter()
                .position(|a| a.starts_with("http://") || a.starts_with("https://"))?;
            Some(Kind::WrappedHttp {
                url: args[url_index].clone(),
                url_index,
            })
        }
        _ => None,
    }
}

/// The `--server NAME` (or `--server=NAME`) given to a wrapped entry.
pub fn wrapped_server_name(args: &[String]) -> Option<String> {
    let stop = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let opts = &args[..stop];
    for (i, a) in opts.iter().enumerate() {
        if a == "--server" {
            return opts.get(i + 1).cloned();
        }
        if let Some(v) = a.strip_prefix("--server=") {
            return Some(v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::jsonc::{parse, Dialect};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn recognises_warden_binaries() {
        assert!(is_warden_binary("mcp-warden"));
        assert!(is_warden_binary("/usr/local/bin/mcp-warden"));
        assert!(is_warden_binary(r"C:\Tools\MCP-Warden.exe"));
        assert!(!is_warden_binary("mcp-warden-helper"));
        assert!(!is_warden_binary("npx"));
    }

    #[test]
    fn parses_wrap_and_connect() {
        let k = parse_wrap(&s(&["wrap", "--server", "fs", "--", "npx", "-y", "x"])).unwrap();
        assert_eq!(
            k,
            Kind::WrappedStdio {
                command: "npx".into(),
                args: s(&["-y", "x"]),
                cmd_index: 4
            }
        );
        let k = parse_wrap(&s(&["connect", "https://h/mcp", "--server", "r"])).unwrap();
        assert_eq!(
            k,
            Kind::WrappedHttp {
                url: "https://h/mcp".into(),
                url_index: 1
            }
        );
        assert!(parse_wrap(&s(&["wrap", "--server", "fs"])).is_none());
        assert!(parse_wrap(&s(&["serve"])).is_none());
        assert_eq!(
            wrapped_server_name(&s(&["wrap", "--server=a", "--", "x"])),
            Some("a".into())
        );
        assert_eq!(
            wrapped_server_name(&s(&["wrap", "--", "--server", "x"])),
            None
        );
    }

    #[test]
    fn finds_entries_in_claude_code_projects() {
        let src = r#"{"mcpServers":{"a":{"command":"x"}},"projects":{"/p":{"mcpServers":{"b":{"url":"https://u"}}},"/q":{}}}"#;
        let root = parse(src, Dialect::Json).unwrap();
        let e = entries(&root, Layout::ClaudeCodeUser);
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[1].scope.as_deref(), e[1].name.as_str()),
            (Some("/p"), "b")
        );
        assert_eq!(
            classify(e[1].node),
            Kind::Http {
                url: "https://u".into(),
                url_key: "url".into()
            }
        );
        assert!(entries(&root, Layout::Servers).is_empty());
    }

    #[test]
    fn vscode_settings_both_spellings() {
        let src =
            r#"{"mcp":{"servers":{"a":{"command":"x"}}},"mcp.servers":{"b":{"command":"y"}}}"#;
        let root = parse(src, Dialect::Jsonc).unwrap();
        assert_eq!(entries(&root, Layout::VsCodeSettings).len(), 2);
    }
}
