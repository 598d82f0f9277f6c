//! `approve ID`, `deny ID`, `approvals` (list pending).

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED};
use crate::approval::ApprovalQueue;
use crate::config;

#[derive(clap::Args)]
pub struct DecideArgs {
    /// The approval id shown in the pending list and in the error the client saw.
    id: String,
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

fn queue_dir(config_file: Option<&std::path::Path>) -> Result<std::path::PathBuf, i32> {
    let _ = load_config(config_file)?;
    Ok(config::resolve(&state_dir(), "approvals"))
}

pub fn decide(args: DecideArgs, approve: bool) -> i32 {
    let dir = match queue_dir(args.config.as_deref()) {
        Ok(d) => d,
        Err(code) => return code,
    };
    match ApprovalQueue::decide(&dir, &args.id, approve) {
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

pub fn list() -> i32 {
    let dir = config::resolve(&state_dir(), "approvals");
    match ApprovalQueue::list(&dir) {
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
            }
            0
        }
        Err(e) => fail(EXIT_CHECK_FAILED, &format!("approvals: {e}")),
    }
}
