//! `detect`, `install`, `uninstall`: MCP client configs on this machine.

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_USAGE};
use crate::clients::{
    self, Client, Env, InstallOptions, PinStatus, StatusSource, UninstallOptions,
};
use crate::pins::PinStore;
use crate::trust::TrustStore;

/// Pin and trust status from this machine's state dir, for `detect`.
struct StateStatus {
    pins: PinStore,
    trust: TrustStore,
}

impl StateStatus {
    fn open(config: Option<&std::path::Path>) -> StateStatus {
        let state = state_dir();
        let pins_dir = load_config(config)
            .map(|c| c.pins.dir)
            .unwrap_or_else(|_| "pins".into());
        StateStatus {
            pins: PinStore::new(crate::config::resolve(&state, &pins_dir)),
            trust: TrustStore::new(&state),
        }
    }
}

impl StatusSource for StateStatus {
    fn pin_status(&self, server: &str) -> PinStatus {
        match self.pins.read(server) {
            Ok(snap) if snap.pin.is_some() => {
                let held = snap
                    .held
                    .as_ref()
                    .is_some_and(|h| h.iter().any(|(_, _, item)| !item.exposed));
                if held {
                    PinStatus::Drifted
                } else {
                    PinStatus::Pinned
                }
            }
            _ => PinStatus::None,
        }
    }

    fn trust(&self, server: &str) -> Option<f64> {
        if !self.trust.exists(server) {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        crate::trust::report(&self.trust, server, now)
            .ok()
            .map(|r| r.score)
    }
}

#[derive(clap::Args)]
pub struct DetectArgs {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Configuration file (where the pins are kept; default: proxy.toml in the state dir).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
pub struct InstallArgs {
    /// Only this client (claude-desktop, claude-code, cursor, vscode, windsurf).
    #[arg(long)]
    client: Option<String>,
    /// Only this server (its key in the config).
    #[arg(long)]
    server: Option<String>,
    /// Print the diff, write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    #[arg(long)]
    client: Option<String>,
    #[arg(long)]
    server: Option<String>,
    #[arg(long)]
    dry_run: bool,
}

fn parse_client(c: Option<String>) -> Result<Option<Client>, i32> {
    match c {
        None => Ok(None),
        Some(name) => name
            .parse::<Client>()
            .map(Some)
            .map_err(|e| fail(EXIT_USAGE, &e)),
    }
}

pub fn detect(args: DetectArgs) -> i32 {
    let env = Env::from_process();
    let found = clients::detect_all(&env, &StateStatus::open(args.config.as_deref()));
    for p in &found.problems {
        eprintln!("mcp-warden: {p}");
    }
    if args.json {
        match serde_json::to_string_pretty(&found.servers) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(EXIT_CHECK_FAILED, &e.to_string()),
        }
    } else {
        print!("{}", clients::render_table(&found.servers));
    }
    0
}

pub fn install(args: InstallArgs) -> i32 {
    let client = match parse_client(args.client) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let binary_path = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(EXIT_CHECK_FAILED, &format!("cannot find my own path: {e}")),
    };
    if let Some(code) = unknown_server(args.server.as_deref(), client) {
        return code;
    }
    let opts = InstallOptions {
        client,
        server: args.server,
        dry_run: args.dry_run,
        binary_path,
    };
    report(clients::install(&Env::from_process(), &opts))
}

pub fn uninstall(args: UninstallArgs) -> i32 {
    let client = match parse_client(args.client) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(code) = unknown_server(args.server.as_deref(), client) {
        return code;
    }
    let opts = UninstallOptions {
        client,
        server: args.server,
        dry_run: args.dry_run,
    };
    report(clients::uninstall(&Env::from_process(), &opts))
}

/// `--server NAME` that no client config on this machine has: an error naming the ones there are.
fn unknown_server(server: Option<&str>, client: Option<Client>) -> Option<i32> {
    let server = server?;
    let found = clients::detect_all(&Env::from_process(), &clients::NoStatus);
    let mut names: Vec<&str> = found
        .servers
        .iter()
        .filter(|s| client.is_none_or(|c| s.client == c))
        .map(|s| s.server.as_str())
        .collect();
    if names.contains(&server) {
        return None;
    }
    names.sort_unstable();
    names.dedup();
    Some(fail(
        EXIT_CHECK_FAILED,
        &format!(
            "no server {server:?} in any client config (found: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ),
    ))
}

fn report(result: Result<clients::InstallReport, clients::ClientError>) -> i32 {
    match result {
        Ok(r) => {
            print!("{r}");
            if r.invalid_files() > 0 {
                EXIT_CHECK_FAILED
            } else {
                0
            }
        }
        Err(e) => fail(EXIT_CHECK_FAILED, &e.to_string()),
    }
}
