//! `trust [SERVER] [--json]` and `feedback SERVER +1|-1`.

use super::{fail, state_dir, EXIT_CHECK_FAILED, EXIT_USAGE};
use crate::trust::{self, TrustStore, Vote};

#[derive(clap::Args)]
pub struct TrustArgs {
    /// One server's breakdown; all servers when omitted.
    server: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Forget SERVER's recorded history (the score starts over as a new server's); the old
    /// file is kept as `<file>.reset-<unix time>` for the record.
    #[arg(long, requires = "server")]
    reset: bool,
}

#[derive(clap::Args)]
pub struct FeedbackArgs {
    server: String,
    /// +1 or -1.
    #[arg(allow_hyphen_values = true)]
    vote: String,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn show(args: TrustArgs) -> i32 {
    let store = TrustStore::new(&state_dir());
    if let Some(server) = &args.server {
        if !store.exists(server) {
            let known = store.servers().unwrap_or_default();
            return fail(
                EXIT_CHECK_FAILED,
                &format!(
                    "no trust history for {server:?} (known: {})",
                    if known.is_empty() {
                        "none yet".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        if args.reset {
            return reset(&store, server);
        }
    }
    match args.server {
        Some(server) => match trust::report(&store, &server, now()) {
            Ok(r) if args.json => {
                println!("{}", r.to_json());
                0
            }
            Ok(r) => {
                print!("{}", trust::render_table(&r));
                0
            }
            Err(e) => fail(EXIT_CHECK_FAILED, &format!("trust {server}: {e}")),
        },
        None => match trust::reports_all(&store, now()) {
            Ok((reports, errors)) => {
                for e in errors {
                    eprintln!("mcp-warden: {e}");
                }
                if args.json {
                    let all: Vec<serde_json::Value> = reports
                        .iter()
                        .filter_map(|r| serde_json::from_str(&r.to_json()).ok())
                        .collect();
                    println!("{}", serde_json::Value::Array(all));
                } else {
                    print!("{}", trust::render_summary(&reports));
                }
                0
            }
            Err(e) => fail(EXIT_CHECK_FAILED, &format!("trust: {e}")),
        },
    }
}

fn reset(store: &TrustStore, server: &str) -> i32 {
    let result = store.path_of(server).and_then(|path| {
        let aside = path.with_extension(format!("json.reset-{}", now()));
        std::fs::rename(&path, &aside).map(|()| aside)
    });
    match result {
        Ok(aside) => {
            println!(
                "{server}: trust history reset (kept as {}); it scores as a new server",
                aside.display()
            );
            0
        }
        Err(e) => fail(EXIT_CHECK_FAILED, &format!("trust {server} --reset: {e}")),
    }
}

pub fn feedback(args: FeedbackArgs) -> i32 {
    let vote: Vote = match args.vote.parse() {
        Ok(v) => v,
        Err(_) => {
            return fail(
                EXIT_USAGE,
                &format!("vote must be +1 or -1, not {:?}", args.vote),
            )
        }
    };
    let store = TrustStore::new(&state_dir());
    if !store.exists(&args.server) {
        eprintln!(
            "mcp-warden: note: no observations of {:?} yet (typo?)",
            args.server
        );
    }
    match trust::feedback(&store, &args.server, vote, now()) {
        Ok(r) => {
            println!("{} trust {:.4}", r.server, r.score);
            0
        }
        Err(e) => fail(EXIT_CHECK_FAILED, &format!("feedback: {e}")),
    }
}
