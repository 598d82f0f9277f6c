//! `detect`, `install`, `uninstall`: MCP client configs on this machine.

use super::{fail, EXIT_CHECK_FAILED, EXIT_USAGE};
use crate::clients::{self, Client, Env, InstallOptions, NoStatus, UninstallOptions};

#[derive(clap::Args)]
pub struct DetectArgs {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
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
            .map_err(|_| fail(EXIT_USAGE, &format!("unknown client {name:?}"))),
    }
}

pub fn detect(args: DetectArgs) -> i32 {
    let env = Env::from_process();
    let found = clients::detect_all(&env, &NoStatus);
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
    let opts = UninstallOptions {
        client,
        server: args.server,
        dry_run: args.dry_run,
    };
    report(clients::uninstall(&Env::from_process(), &opts))
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
