//! `audit verify FILE`, `audit tail`, `check-config`.

use std::path::{Path, PathBuf};

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_USAGE};
use crate::audit::{self, verify::ChainReport};
use crate::config;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Check a file's hash chain (and, with --key, its signed checkpoints); names the first
    /// broken line. Given a directory, checks every `*.jsonl` file in it, in name order.
    Verify {
        /// An audit file, or the audit directory.
        file: PathBuf,
        /// The proxy's public key (base64, or a file holding it, or the proxy's PEM key file).
        #[arg(long)]
        key: Option<String>,
    },
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
        AuditCommand::Verify { file, key } if file.is_dir() => verify_dir(&file, key.as_deref()),
        AuditCommand::Verify { file, key } => verify(&file, key.as_deref()),
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

/// Every file of an audit directory, oldest name first; exit 1 if any is broken.
fn verify_dir(dir: &Path, key: Option<&str>) -> i32 {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "jsonl"))
            .collect(),
        Err(e) => return fail(EXIT_USAGE, &format!("cannot read {}: {e}", dir.display())),
    };
    files.sort();
    if files.is_empty() {
        return fail(
            EXIT_CHECK_FAILED,
            &format!("no audit files (*.jsonl) in {}", dir.display()),
        );
    }
    let mut broken = 0;
    for f in &files {
        print!("{}: ", f.display());
        if verify(f, key) != 0 {
            broken += 1;
        }
    }
    println!("{} file(s), {broken} broken", files.len());
    if broken > 0 {
        EXIT_CHECK_FAILED
    } else {
        0
    }
}

fn verify(file: &Path, key: Option<&str>) -> i32 {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return fail(EXIT_USAGE, &format!("cannot read {}: {e}", file.display())),
    };
    let Some(key) = key else {
        return match audit::verify::verify_chain(&bytes) {
            ChainReport::Intact { lines } => {
                println!("ok: {lines} records, chain intact (checkpoints not checked: pass --key)");
                0
            }
            ChainReport::Broken { line, reason } => {
                println!("broken at line {line}: {reason}");
                EXIT_CHECK_FAILED
            }
        };
    };
    let key = match public_key(key) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_USAGE, &e),
    };
    match audit::verify::verify_with_key(&bytes, &key) {
        Ok(r) if r.checkpoints == 0 => {
            println!("broken: no signed checkpoint in the file");
            EXIT_CHECK_FAILED
        }
        Ok(r) => {
            println!(
                "ok: chain intact, {} signed checkpoint(s) valid, {} record(s) after the last one",
                r.checkpoints, r.unsigned_tail
            );
            0
        }
        Err(ChainReport::Broken { line, reason }) => {
            println!("broken at line {line}: {reason}");
            EXIT_CHECK_FAILED
        }
        Err(ChainReport::Intact { .. }) => EXIT_CHECK_FAILED,
    }
}

/// `--key`: a public key, a file holding one, or a PEM private key file (its public half).
fn public_key(arg: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    use crate::sig::keys;
    let text = std::fs::read_to_string(arg).unwrap_or_else(|_| arg.to_owned());
    if text.contains("PRIVATE KEY") {
        return keys::signing_key_from_pem(&text)
            .map(|k| k.verifying_key())
            .map_err(|e| format!("{arg}: {e}"));
    }
    keys::parse_public_key(text.trim()).map_err(|e| format!("--key: {e}"))
}

pub fn check_config(file: Option<PathBuf>) -> i32 {
    let c = match load_config(file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let state = crate::config::state_dir(&crate::config::ProcessEnv);
    let findings = crate::config::lint::check(&c, &crate::config::ProcessEnv, &state);
    for f in &findings {
        eprintln!("{}: {}", if f.error { "error" } else { "warning" }, f.text);
    }
    let sources = crate::config::lint::policy_sources(&c, &state);
    eprintln!("policy in force: {}", sources.join(", "));
    let errors = findings.iter().filter(|f| f.error).count();
    if errors > 0 {
        eprintln!("config has {errors} error(s)");
        return super::EXIT_CONFIG;
    }
    eprintln!(
        "config ok: {} server(s), signatures {:?}, audit fsync {:?}, {} warning(s)",
        c.servers.len(),
        c.signatures.mode,
        c.audit.fsync,
        findings.len()
    );
    0
}
