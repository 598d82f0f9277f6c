//! `audit verify FILE`, `audit tail`, `check-config`.

use std::path::{Path, PathBuf};

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_USAGE};
use crate::audit::{self, verify::ChainReport};
use crate::config;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
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

pub fn run(cmd: AuditCommand) -> i32 {
    match cmd {
        AuditCommand::Verify { file } => verify(&file),
        AuditCommand::Tail {
            config,
            dir,
            lines,
            no_follow,
        } => {
            let dir = match dir {
                Some(d) => d,
                None => match load_config(config.as_deref()) {
                    Ok(c) => config::resolve(&state_dir(), &c.audit.dir),
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

fn verify(file: &Path) -> i32 {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return fail(EXIT_USAGE, &format!("cannot read {}: {e}", file.display())),
    };
    match audit::verify::verify_chain(&bytes) {
        ChainReport::Intact { lines } => {
            println!("ok: {lines} records, chain intact");
            0
        }
        ChainReport::Broken { line, reason } => {
            println!("broken at line {line}: {reason}");
            EXIT_CHECK_FAILED
        }
    }
}

pub fn check_config(file: Option<PathBuf>) -> i32 {
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
