//! MCP client configs: `detect`, `install` and `uninstall` (SPEC §13, §14).
//!
//! Finds the server lists of Claude Desktop, Claude Code, Cursor, VS Code and
//! Windsurf (plus `MCP_SERVER_*` variables), reports each server's wrap, pin
//! and trust status, and rewrites configs so servers run under
//! `mcp-warden wrap` / `mcp-warden connect` — and back. Edits are minimal
//! byte-span splices, so comments, key order, indentation and line endings
//! survive, and install→uninstall gives back the original bytes.
//!
//! | file            | one job                                                      |
//! |-----------------|--------------------------------------------------------------|
//! | `env.rs`        | injected home/APPDATA/cwd/vars ([`Env`]); the only real-env read |
//! | `locations.rs`  | which files each client uses, JSON or JSONC, where servers sit |
//! | `jsonc.rs`      | span-keeping JSON/JSONC tree (`Node`) and `parse`   |
//! | `jsonc_parser.rs` | the tolerant recursive-descent parser behind it            |
//! | `load.rs`       | read + parse one config file; "invalid" is decided here      |
//! | `servers.rs`    | find server entries; stdio / http / wrapped classification   |
//! | `detect.rs`     | [`detect`], [`DetectedServer`] (§14 JSON), [`render_table`]  |
//! | `rewrite.rs`    | the reversible wrap/unwrap edits of one server entry         |
//! | `splice.rs`     | byte-span edits, applying them, matching local formatting    |
//! | `install.rs`    | [`install`] with [`InstallOptions`]                          |
//! | `uninstall.rs`  | [`uninstall`] with [`UninstallOptions`]                      |
//! | `report.rs`     | [`InstallReport`] and the verify → backup → write step       |
//! | `fsio.rs`       | timestamped backups, atomic mode-preserving writes           |
//! | `diff.rs`       | unified diff for dry runs                                    |
//! | `fixture_tests.rs` | data-driven round trip over `fixtures/clients/`           |

mod detect;
mod diff;
mod env;
mod fsio;
mod install;
mod jsonc;
mod jsonc_parser;
mod load;
mod locations;
mod report;
mod rewrite;
mod servers;
mod splice;
mod uninstall;

#[cfg(test)]
mod fixture_tests;

use std::fmt;
use std::path::PathBuf;

pub use detect::{
    detect, detect_all, render_table, DetectedServer, Detection, FnStatus, NoStatus, PinStatus,
    StatusSource, Transport,
};
pub use env::{Env, Os};
pub use fsio::BACKUP_MARKER;
pub use install::{install, InstallOptions};
pub use locations::{locations, Client, Layout, Location};
pub use report::{FileReport, InstallReport, Outcome};
pub use uninstall::{uninstall, UninstallOptions};

/// Errors that stop install/uninstall. Invalid config files are not errors:
/// they are reported per file and left untouched.
#[derive(Debug)]
pub enum ClientError {
    /// The mcp-warden path to write into configs must be absolute.
    RelativeBinary(PathBuf),
    /// Config files are UTF-8 JSON; a non-UTF-8 path cannot go in them.
    NonUtf8Binary(PathBuf),
    /// Backing up or writing a config failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::RelativeBinary(p) => {
                write!(
                    f,
                    "mcp-warden binary path must be absolute, got {}",
                    p.display()
                )
            }
            ClientError::NonUtf8Binary(p) => {
                write!(f, "mcp-warden binary path is not UTF-8: {}", p.display())
            }
            ClientError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
