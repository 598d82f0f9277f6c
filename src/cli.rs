//! The command line: parse flags, load config, dispatch. Exit codes: 0 success, 1 a check
//! failed, 2 usage, 64 bad config. Everything human-readable goes to stderr; in `wrap` stdout
//! belongs to MCP alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::audit::{self, AuditLog};
use crate::codec::Limits;
use crate::config::{self, Config, ConfigError, ProcessEnv};
use crate::pipeline::Pipeline;
use crate::transport::{child, stdio};

pub const EXIT_CHECK_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_CONFIG: i32 = 64;

#[derive(Parser)]
#[command(
    name = "mcp-warden",
    version,
    about = "A transparent security proxy for the Model Context Protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an MCP server as a child process and relay its stdio through the proxy.
    Wrap {
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
    },
    /// Validate a configuration file and name the key and line of each error.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The file may also be given positionally.
        file: Option<PathBuf>,
    },
    /// Inspect the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check a file's hash chain; names the first broken line.
    Verify { file: PathBuf },
    /// Print recent records and follow new ones.
    Tail {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Audit directory (default: from config).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Print and exit instead of following.
        #[arg(long)]
        no_follow: bool,
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
        Command::Wrap {
            server,
            config,
            audit_file,
            command,
        } => wrap(server, config, audit_file, command),
        Command::CheckConfig { config, file } => check_config(config.or(file)),
        Command::Audit {
            command: AuditCommand::Verify { file },
        } => audit_verify(&file),
        Command::Audit {
            command:
                AuditCommand::Tail {
                    config,
                    dir,
                    lines,
                    no_follow,
                },
        } => {
            let dir = match dir {
                Some(d) => d,
                None => match load_config(config.as_deref()) {
                    Ok(c) => config::resolve(&config::state_dir(&ProcessEnv), &c.audit.dir),
                    Err(code) => return code,
                },
            };
            match audit::tail::tail(&dir, lines, !no_follow, &mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => fail(EXIT_CHECK_FAILED, &format!("audit tail: {e}")),
            }
        }
    }
}

/// Logs go to stderr only (stdout may carry MCP). `MCP_WARDEN_LOG` sets the filter.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCP_WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn fail(code: i32, msg: &str) -> i32 {
    eprintln!("mcp-warden: {msg}");
    code
}

/// The config file: the flag, else `proxy.toml` in the state dir when it exists, else defaults.
fn load_config(flag: Option<&std::path::Path>) -> Result<Config, i32> {
    let env = ProcessEnv;
    let default_file = config::state_dir(&env).join("proxy.toml");
    let file = flag
        .map(PathBuf::from)
        .or_else(|| default_file.exists().then_some(default_file));
    Config::load(file.as_deref(), &env)
        .map_err(|e: ConfigError| fail(EXIT_CONFIG, &format!("bad config: {e}")))
}

fn check_config(file: Option<PathBuf>) -> i32 {
    match load_config(file.as_deref()) {
        Ok(c) => {
            eprintln!(
                "config ok: {} server(s), signatures {:?}, audit fsync {:?}",
                c.servers.len(),
                c.signatures.mode,
                c.audit.fsync
            );
            0
        }
        Err(code) => code,
    }
}

fn audit_verify(file: &std::path::Path) -> i32 {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return fail(EXIT_USAGE, &format!("cannot read {}: {e}", file.display())),
    };
    match audit::verify::verify_chain(&bytes) {
        audit::verify::ChainReport::Intact { lines } => {
            println!("ok: {lines} records, chain intact");
            0
        }
        audit::verify::ChainReport::Broken { line, reason } => {
            println!("broken at line {line}: {reason}");
            EXIT_CHECK_FAILED
        }
    }
}

fn wrap(
    server: Option<String>,
    config_file: Option<PathBuf>,
    audit_file: Option<PathBuf>,
    command: Vec<String>,
) -> i32 {
    let config = match load_config(config_file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let server = server.unwrap_or_else(|| child::derive_server_name(&command));
    let state = config::state_dir(&ProcessEnv);
    let audit = match &audit_file {
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
    audit.start_flusher();
    let limits = Limits {
        max_message_bytes: config.proxy.max_message_bytes,
        ..Limits::default()
    };
    let pipeline = Arc::new(Pipeline::new(&server, limits, audit));
    let opts = stdio::WrapOptions {
        command,
        grace: Duration::from_secs(config.proxy.shutdown_grace_secs),
    };
    match stdio::run(
        opts,
        pipeline,
        Box::new(std::io::stdin()),
        Box::new(std::io::stdout()),
    ) {
        Ok(code) => code,
        Err(e) => fail(EXIT_CHECK_FAILED, &e.to_string()),
    }
}
