//! `keygen` and `sign`.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{fail, state_dir, EXIT_CHECK_FAILED, EXIT_USAGE};
use crate::sig::{self, keys, message_scheme};

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where to write the private key (default: identity.pem in the state dir). If it exists,
    /// its public key is printed and nothing is written.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// Private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    /// Audience: the server name the message is for.
    #[arg(long)]
    aud: String,
    /// Timestamp (unix seconds); default now.
    #[arg(long)]
    ts: Option<i64>,
    /// Nonce (unpadded base64url of >= 16 bytes); default random.
    #[arg(long)]
    nonce: Option<String>,
}

pub fn keygen(args: KeygenArgs) -> i32 {
    let path = args.out.unwrap_or_else(|| state_dir().join("identity.pem"));
    // `wrap` and `serve` create the identity key on first use: keygen then shows that key
    // rather than failing (replace it only with --force).
    if path.exists() && !args.force {
        return match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|pem| keys::signing_key_from_pem(&pem).map_err(|e| e.to_string()))
        {
            Ok(key) => {
                print_key(&key.verifying_key(), &path);
                eprintln!(
                    "{} already exists: its public key is shown (use --force to replace it)",
                    path.display()
                );
                0
            }
            Err(e) => fail(
                EXIT_CHECK_FAILED,
                &format!(
                    "{} exists but is not a readable Ed25519 key: {e} (use --force to replace)",
                    path.display()
                ),
            ),
        };
    }
    let key = keys::generate_signing_key();
    let pem = match keys::signing_key_to_pem(&key) {
        Ok(p) => p,
        Err(e) => return fail(EXIT_CHECK_FAILED, &format!("cannot encode key: {e}")),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return fail(
                EXIT_CHECK_FAILED,
                &format!("cannot create {}: {e}", dir.display()),
            );
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(0o600);
    if args.force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let written = opts
        .open(&path)
        .and_then(|mut f| f.write_all(pem.as_bytes()));
    if let Err(e) = written {
        return fail(
            EXIT_CHECK_FAILED,
            &format!(
                "cannot write {}: {e} (use --force to replace)",
                path.display()
            ),
        );
    }
    print_key(&key.verifying_key(), &path);
    0
}

/// Labelled, in the form `[[identity.trusted_keys]]` takes, so it can be pasted into a config.
fn print_key(public: &ed25519_dalek::VerifyingKey, path: &std::path::Path) {
    println!(
        "public_key = \"ed25519:{}\"\nkid = \"{}\"\nprivate_key = {:?}",
        keys::public_key_to_string(public),
        keys::kid_of(public),
        path.display().to_string()
    );
}

pub fn sign(args: SignArgs) -> i32 {
    let pem = match std::fs::read_to_string(&args.key) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                EXIT_USAGE,
                &format!("cannot read {}: {e}", args.key.display()),
            )
        }
    };
    let key = match keys::signing_key_from_pem(&pem) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_USAGE, &format!("{}: {e}", args.key.display())),
    };
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        return fail(EXIT_USAGE, &format!("cannot read stdin: {e}"));
    }
    let ts = args.ts.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });
    let nonce = args.nonce.unwrap_or_else(sig::new_nonce);
    match message_scheme::sign(input.trim_ascii(), &key, &args.aud, ts, &nonce) {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(e) => fail(EXIT_USAGE, &format!("cannot sign: {e}")),
    }
}
