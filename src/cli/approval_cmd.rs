//! `approve ID`, `deny ID`, `approvals` (list pending).
//!
//! A decision is a signature, not a file edit: the waiting proxy accepts it only if a key it
//! trusts signed it (see `approval`). By default that is the proxy's own identity key (the one
//! `wrap` and `serve` use, in the state dir); `--key` signs with an operator key listed in
//! `[[identity.trusted_keys]]` with role `operator` instead.

use std::path::PathBuf;

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_CONFIG};
use crate::approval::{ApprovalQueue, Signer};
use crate::config;

#[derive(clap::Args)]
pub struct DecideArgs {
    /// The approval id shown in the pending list and in the error the client saw.
    id: String,
    /// Configuration file (default: proxy.toml in the state dir, if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Sign with this operator key (PKCS#8 PEM) instead of the proxy's identity key.
    #[arg(long)]
    key: Option<PathBuf>,
}

fn signer(args: &DecideArgs, config: &config::Config) -> Result<Signer, String> {
    match &args.key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("--key {}: {e}", path.display()))?;
            let key = crate::sig::keys::signing_key_from_pem(&pem)
                .map_err(|e| format!("--key {}: {e}", path.display()))?;
            Ok(Signer {
                name: format!("operator key {}", path.display()),
                key,
            })
        }
        None => {
            let path = config::resolve(&state_dir(), &config.identity.key);
            let key = crate::identity::load_or_create(&path)?;
            Ok(Signer {
                name: "identity".into(),
                key,
            })
        }
    }
}

pub fn decide(args: DecideArgs, approve: bool) -> i32 {
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let signer = match signer(&args, &config) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_CONFIG, &e),
    };
    // `[cluster]`: the ticket lives in Redis, whichever replica holds the call.
    let decided = if config.cluster.enabled() {
        match crate::cluster::Cluster::start(&config.cluster, &state_dir(), true) {
            Ok(c) => ApprovalQueue::decide_in(&*c.tickets(), &args.id, approve, &signer),
            Err(e) => return fail(EXIT_CONFIG, &format!("bad config: {e}")),
        }
    } else {
        let dir = config::resolve(&state_dir(), "approvals");
        ApprovalQueue::decide(&dir, &args.id, approve, &signer)
    };
    match decided {
        Ok(t) => {
            println!(
                "{} {}: {} on {}",
                if approve { "approved" } else { "denied" },
                t.id,
                t.tool,
                t.server
            );
            0
        }
        Err(e) => fail(EXIT_CHECK_FAILED, &e),
    }
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Print the waiting tickets as a JSON array (the fields of the admin API's list).
    #[arg(long)]
    json: bool,
}

pub fn list(args: ListArgs) -> i32 {
    let dir = config::resolve(&state_dir(), "approvals");
    match ApprovalQueue::list(&dir) {
        Ok(tickets) if args.json => match serde_json::to_string_pretty(&tickets) {
            Ok(text) => {
                println!("{text}");
                0
            }
            Err(e) => fail(EXIT_CHECK_FAILED, &format!("approvals: {e}")),
        },
        Ok(tickets) => {
            if tickets.is_empty() {
                println!("no pending approvals");
            }
            for t in tickets {
                println!(
                    "{}  {}  {}  risk={}  rule={}  expires_in={}s",
                    t.id,
                    t.server,
                    t.tool,
                    t.risk,
                    t.rule,
                    t.expires.saturating_sub(t.created)
                );
                // The safe view: already escaped, redacted and cut when the ticket was made —
                // but the file is writable by the same user, so escape once more for the terminal.
                for line in &t.arguments {
                    println!(
                        "    {}",
                        crate::checks::unicode_hazards::escape_for_display(line, 400)
                    );
                }
            }
            0
        }
        Err(e) => fail(EXIT_CHECK_FAILED, &format!("approvals: {e}")),
    }
}
