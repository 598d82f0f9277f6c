//! Where each MCP client keeps its server list, and in which shape.
//!
//! Paths are derived only from an [`Env`]; nothing here touches the disk.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

use super::env::{Env, Os};
use super::jsonc::Dialect;

/// An MCP client whose configuration we understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    #[serde(rename = "vscode")]
    VsCode,
    Windsurf,
    /// `MCP_SERVER_*` environment variables (detect only; nothing to rewrite).
    Env,
}

impl Client {
    pub const ALL: [Client; 6] = [
        Client::ClaudeDesktop,
        Client::ClaudeCode,
        Client::Cursor,
        Client::VsCode,
        Client::Windsurf,
        Client::Env,
    ];

    /// The name used on the command line and in `detect --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::VsCode => "vscode",
            Client::Windsurf => "windsurf",
            Client::Env => "env",
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Client {
    type Err = String;

    /// Accepts the canonical names plus a few obvious spellings.
    fn from_str(s: &str) -> Result<Client, String> {
        let norm: String = s
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        match norm.as_str() {
            "claudedesktop" | "claude" => Ok(Client::ClaudeDesktop),
            "claudecode" => Ok(Client::ClaudeCode),
            "cursor" => Ok(Client::Cursor),
            "vscode" | "code" => Ok(Client::VsCode),
            "windsurf" | "codeium" => Ok(Client::Windsurf),
            "env" => Ok(Client::Env),
            _ => Err(format!(
                "unknown client '{s}' (expected one of: claude-desktop, claude-code, cursor, vscode, windsurf, env)"
            )),
        }
    }
}

/// Where inside a file the server maps live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Top-level `mcpServers` (Claude Desktop, Cursor, Windsurf, `.mcp.json`).
    McpServers,
    /// `~/.claude.json`: top-level `mcpServers` and `projects.<path>.mcpServers`.
    ClaudeCodeUser,
    /// Top-level `servers` (VS Code `mcp.json`).
    Servers,
    /// VS Code user `settings.json`: `"mcp": {"servers": …}` or `"mcp.servers"`.
    VsCodeSettings,
}

/// One candidate config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub client: Client,
    pub path: PathBuf,
    pub dialect: Dialect,
    pub layout: Layout,
}

/// All candidate files for this environment, existing or not, without
/// duplicates (the home and project paths coincide when cwd is home).
pub fn locations(env: &Env) -> Vec<Location> {
    let mut out: Vec<Location> = Vec::new();
    let mut add = |client, path: Option<PathBuf>, dialect, layout| {
        if let Some(path) = path {
            if !out.iter().any(|l| l.path == path) {
                out.push(Location {
                    client,
                    path,
                    dialect,
                    layout,
                });
            }
        }
    };
    let home = env.home.clone();
    let in_home = |rel: &[&str]| {
        home.as_ref()
            .map(|h| rel.iter().fold(h.clone(), |p, c| p.join(c)))
    };
    let json = Dialect::Json;

    // Claude Desktop: per-OS application-support directory.
    let claude_dir = match env.os {
        Os::MacOs => in_home(&["Library", "Application Support", "Claude"]),
        Os::Linux => env.xdg_config_dir().map(|d| d.join("Claude")),
        Os::Windows => env.appdata_dir().map(|d| d.join("Claude")),
    };
    add(
        Client::ClaudeDesktop,
        claude_dir.map(|d| d.join("claude_desktop_config.json")),
        json,
        Layout::McpServers,
    );

    add(
        Client::ClaudeCode,
        in_home(&[".claude.json"]),
        json,
        Layout::ClaudeCodeUser,
    );
    add(
        Client::ClaudeCode,
        Some(env.cwd.join(".mcp.json")),
        json,
        Layout::McpServers,
    );

    add(
        Client::Cursor,
        in_home(&[".cursor", "mcp.json"]),
        json,
        Layout::McpServers,
    );
    add(
        Client::Cursor,
        Some(env.cwd.join(".cursor").join("mcp.json")),
        json,
        Layout::McpServers,
    );

    // VS Code: workspace mcp.json, then the user profile (mcp.json and the
    // older `mcp.servers` setting). Both are JSONC.
    let jsonc = Dialect::Jsonc;
    add(
        Client::VsCode,
        Some(env.cwd.join(".vscode").join("mcp.json")),
        jsonc,
        Layout::Servers,
    );
    let code_user = match env.os {
        Os::MacOs => in_home(&["Library", "Application Support", "Code", "User"]),
        Os::Linux => env.xdg_config_dir().map(|d| d.join("Code").join("User")),
        Os::Windows => env.appdata_dir().map(|d| d.join("Code").join("User")),
    };
    add(
        Client::VsCode,
        code_user.as_ref().map(|d| d.join("mcp.json")),
        jsonc,
        Layout::Servers,
    );
    add(
        Client::VsCode,
        code_user.map(|d| d.join("settings.json")),
        jsonc,
        Layout::VsCodeSettings,
    );

    add(
        Client::Windsurf,
        in_home(&[".codeium", "windsurf", "mcp_config.json"]),
        json,
        Layout::McpServers,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn paths(env: &Env) -> Vec<PathBuf> {
        locations(env).into_iter().map(|l| l.path).collect()
    }

    #[test]
    fn claude_desktop_per_os() {
        let mac = paths(&Env::new(Os::MacOs, "/Users/me", "/w"));
        assert!(mac.contains(&PathBuf::from(
            "/Users/me/Library/Application Support/Claude/claude_desktop_config.json"
        )));
        let linux = paths(&Env::new(Os::Linux, "/home/me", "/w"));
        assert!(linux.contains(&PathBuf::from(
            "/home/me/.config/Claude/claude_desktop_config.json"
        )));
        let mut win = Env::new(Os::Windows, "/c/Users/me", "/w");
        win.appdata = Some(PathBuf::from("/c/Users/me/AppData/Roaming"));
        let win = paths(&win);
        assert!(win.contains(
            &Path::new("/c/Users/me/AppData/Roaming/Claude").join("claude_desktop_config.json")
        ));
    }

    #[test]
    fn lists_every_client_and_dedupes_home_as_cwd() {
        let env = Env::new(Os::Linux, "/home/me", "/home/me");
        let locs = locations(&env);
        for c in [
            Client::ClaudeDesktop,
            Client::ClaudeCode,
            Client::Cursor,
            Client::VsCode,
            Client::Windsurf,
        ] {
            assert!(locs.iter().any(|l| l.client == c), "{c}");
        }
        let cursor: Vec<_> = locs.iter().filter(|l| l.client == Client::Cursor).collect();
        assert_eq!(cursor.len(), 1, "~/.cursor/mcp.json listed once");
        let vs = locs
            .iter()
            .find(|l| l.path.ends_with(".vscode/mcp.json"))
            .unwrap();
        assert_eq!(vs.dialect, Dialect::Jsonc);
    }

    #[test]
    fn client_names_parse() {
        for c in Client::ALL {
            assert_eq!(c.as_str().parse::<Client>(), Ok(c));
        }
        assert_eq!("VS Code".parse::<Client>(), Ok(Client::VsCode));
        assert!("emacs".parse::<Client>().is_err());
    }
}
