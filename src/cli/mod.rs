//! The command line: parse flags, load config, dispatch. Exit codes: 0 success, 1 a check
//! failed, 2 usage, 64 bad config. Everything human-readable goes to stderr unless the command's
//! job is to print it; in `wrap` stdout belongs to MCP alone.
//!
//! | file             | commands                                      |
//! |------------------|-----------------------------------------------|
//! | `wrap_cmd.rs`    | `wrap`                                        |
//! | `connect_cmd.rs` | `connect`                                     |
//! | `serve_cmd.rs`   | `serve`                                       |
//! | `audit_cmd.rs`   | `audit verify`, `audit tail`, `check-config`  |
//! | `keys_cmd.rs`    | `keygen`, `sign`                              |
//! | `clients_cmd.rs` | `detect`, `install`, `uninstall`              |
//! | `trust_cmd.rs`   | `trust`, `feedback`                           |
//! | `approval_cmd.rs`| `approve`, `deny`, `approvals`                |
//! | `pins_cmd.rs`    | `pins list / diff / approve / sign / verify`  |

mod approval_cmd;
mod audit_cmd;
mod clients_cmd;
mod connect_cmd;
mod keys_cmd;
mod pins_cmd;
mod serve_cmd;
mod trust_cmd;
mod wrap_cmd;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{self, Config, ConfigError, ProcessEnv};

pub const EXIT_CHECK_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_CONFIG: i32 = 64;

#[derive(Parser)]
#[command(
    name = "mcp-warden",
    version,
    about = "A transparent security proxy for the Model Context Protocol",
    after_help = "Examples:
  mcp-warden wrap -- npx -y @modelcontextprotocol/server-memory
  mcp-warden wrap --server files -- npx -y @modelcontextprotocol/server-filesystem ~/Documents
  mcp-warden install --dry-run            # what wrapping every client's servers would change
  mcp-warden connect https://mcp.example.com/mcp --server remote
  mcp-warden check-config                 # every problem at once, and the policy in force
  mcp-warden pins diff files && mcp-warden pins approve files
  mcp-warden trust files                  # the eight factors behind a server's score
  mcp-warden audit verify ~/.local/state/mcp-warden/audit

Configuration: proxy.toml in the state dir ($MCP_WARDEN_STATE, else ~/.local/state/mcp-warden) or --config FILE."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an MCP server as a child process and relay its stdio through the proxy.
    Wrap(wrap_cmd::WrapArgs),
    /// Relay a stdio client to a remote streamable HTTP server, signing requests and checking
    /// response signatures against the server's pinned key.
    Connect(connect_cmd::ConnectArgs),
    /// Serve Streamable HTTP in front of every configured server (stdio child per session,
    /// or an HTTP upstream).
    Serve(serve_cmd::ServeArgs),
    /// Validate a configuration file and name the key path and line of each error.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The file may also be given positionally.
        file: Option<PathBuf>,
    },
    /// Inspect the audit trail.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
    /// Write a new Ed25519 key (PKCS#8 PEM, mode 0600) and print its public key and kid.
    Keygen(keys_cmd::KeygenArgs),
    /// Sign one JSON-RPC message from stdin (message scheme) and print it on stdout.
    Sign(keys_cmd::SignArgs),
    /// List the MCP servers configured in the desktop and IDE clients on this machine.
    Detect(clients_cmd::DetectArgs),
    /// Rewrite client configs so every server runs behind mcp-warden (backup first).
    Install(clients_cmd::InstallArgs),
    /// Restore client configs to what they were before `install`.
    Uninstall(clients_cmd::UninstallArgs),
    /// Show servers' trust scores with the factors and evidence behind them.
    Trust(trust_cmd::TrustArgs),
    /// Record operator feedback on a server: +1 or -1.
    Feedback(trust_cmd::FeedbackArgs),
    /// Release a call waiting for approval.
    Approve(approval_cmd::DecideArgs),
    /// Refuse a call waiting for approval.
    Deny(approval_cmd::DecideArgs),
    /// List calls waiting for approval (with the safe view of their arguments).
    Approvals(approval_cmd::ListArgs),
    /// Review and approve capability baselines (pinned tool definitions), sign and verify them.
    Pins {
        #[command(subcommand)]
        command: pins_cmd::PinsCommand,
    },
}

/// Parse the process arguments and run. Returns the exit code.
pub fn main() -> i32 {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_USAGE,
            };
        }
    };
    match cli.command {
        Command::Wrap(args) => wrap_cmd::run(args),
        Command::Connect(args) => connect_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::CheckConfig { config, file } => audit_cmd::check_config(config.or(file)),
        Command::Audit { command } => audit_cmd::run(command),
        Command::Keygen(args) => keys_cmd::keygen(args),
        Command::Sign(args) => keys_cmd::sign(args),
        Command::Detect(args) => clients_cmd::detect(args),
        Command::Install(args) => clients_cmd::install(args),
        Command::Uninstall(args) => clients_cmd::uninstall(args),
        Command::Trust(args) => trust_cmd::show(args),
        Command::Feedback(args) => trust_cmd::feedback(args),
        Command::Approve(args) => approval_cmd::decide(args, true),
        Command::Deny(args) => approval_cmd::decide(args, false),
        Command::Approvals(args) => approval_cmd::list(args),
        Command::Pins { command } => pins_cmd::run(command),
    }
}

/// Logs go to stderr only (stdout may carry MCP). `MCP_WARDEN_LOG` sets the filter.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCP_WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only on a terminal: clients write our stderr into their log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// The codec limits `[proxy]` sets (`wrap` and `connect`).
fn limits(config: &config::Config) -> crate::codec::Limits {
    crate::codec::Limits {
        max_message_bytes: config.proxy.max_message_bytes,
        max_keys_per_object: config.proxy.max_keys_per_object,
        ..crate::codec::Limits::default()
    }
}

/// The start-up report of a relay: what the config still gets wrong at run time, then one line
/// that says what this process is doing, where its files are and what is in force.
fn report_start(config: &config::Config, state: &Path, doing: &str, audit: &Path, admin: &str) {
    for f in config::lint::check(config, &ProcessEnv, state) {
        eprintln!(
            "mcp-warden: {}: {}",
            if f.error { "error" } else { "warning" },
            f.text
        );
    }
    eprintln!(
        "mcp-warden: {doing}: state {}, audit {}, policy {}, {admin}",
        state.display(),
        audit.display(),
        config::lint::policy_sources(config, state).join(" + "),
    );
}

/// Start-up housekeeping of the audit dir (`audit::retention`); a failure is only a warning.
fn prune_audit(config: &config::Config, audit: &crate::audit::AuditLog) {
    let dir = config::resolve(&state_dir(), &config.audit.dir);
    let policy = crate::audit::retention::Retention {
        days: config.audit.retention_days,
        max_files: config.audit.max_files,
    };
    match crate::audit::retention::prune(&dir, audit.path(), policy, std::time::SystemTime::now()) {
        Ok(p) if p != Default::default() => tracing::info!(
            "audit housekeeping in {}: removed {} empty, {} expired, {} over max_files",
            dir.display(),
            p.empty,
            p.expired,
            p.over_count
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "mcp-warden: warning: audit housekeeping in {}: {e}",
            dir.display()
        ),
    }
}

/// Print a one-line reason on stderr and return `code`.
fn fail(code: i32, msg: &str) -> i32 {
    eprintln!("mcp-warden: {msg}");
    code
}

/// The config file: the flag, else `proxy.toml` in the state dir when it exists, else defaults.
fn load_config(flag: Option<&Path>) -> Result<Config, i32> {
    let env = ProcessEnv;
    let default_file = config::state_dir(&env).join("proxy.toml");
    let file = flag
        .map(PathBuf::from)
        .or_else(|| default_file.exists().then_some(default_file));
    Config::load(file.as_deref(), &env)
        .map_err(|e: ConfigError| fail(EXIT_CONFIG, &format!("bad config: {e}")))
}

fn state_dir() -> PathBuf {
    config::state_dir(&ProcessEnv)
}
