//! `pins list | diff | approve | sign | verify` (SPEC §5, §14). The logic lives in
//! `pins::commands`; this file only finds the store and the keys, prints, and picks the exit code.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{fail, load_config, state_dir, EXIT_CHECK_FAILED, EXIT_CONFIG, EXIT_USAGE};
use crate::config::{self, Config};
use crate::pins::{commands, PinError, PinStore};
use crate::sig::{keys, AttestationError, KeyRole, SigningKey, TrustedKeys};

#[derive(clap::Subcommand)]
pub enum PinsCommand {
    /// List every server with pins: pinned tools, held items, whether the file is signed.
    List {
        /// One JSON array: [{"server","file","tools","held":[names],"signed"}].
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Show what is held back for SERVER, each item against its pinned definition.
    Diff {
        /// Server name, as in `wrap --server NAME` (see `pins list`).
        server: String,
        #[command(flatten)]
        common: Common,
    },
    /// Accept held definitions into SERVER's pin file: all of them, or only TOOL.
    ///
    /// Approving changes the pins, so an attestation is removed: sign again afterwards.
    Approve {
        /// Server name, as in `wrap --server NAME` (see `pins list`).
        server: String,
        /// A tool name (or prompt name, or resource template URI); all held items when omitted.
        tool: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Attest SERVER's pin file with an operator key.
    ///
    /// The key's public half must be in `[[identity.trusted_keys]]` with `role = "operator"`
    /// for `pins verify` and `[pins] require_signed` to accept the attestation.
    Sign {
        /// Server name, as in `wrap --server NAME` (see `pins list`).
        server: String,
        /// Operator private key (PKCS#8 PEM, as written by `mcp-warden keygen`).
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Check SERVER's pin file: every digest, and the attestation against the configured
    /// operator keys. Exit 1 when it does not verify.
    Verify {
        /// Server name, as in `wrap --server NAME` (see `pins list`).
        server: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
pub struct Common {
    /// Configuration file (default: proxy.toml in the state dir, if present); gives the pins
    /// directory and the trusted keys.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(cmd: PinsCommand) -> i32 {
    match cmd {
        PinsCommand::List { json, common } => with_store(&common, |store, _| {
            commands::list(store).map(|rows| commands::render_list(&rows, json))
        }),
        PinsCommand::Diff { server, common } => {
            with_store(&common, |store, _| commands::diff(store, &server))
        }
        PinsCommand::Approve {
            server,
            tool,
            common,
        } => with_store(&common, |store, _| {
            commands::approve(store, &server, tool.as_deref(), SystemTime::now())
        }),
        PinsCommand::Sign {
            server,
            key,
            common,
        } => sign(&server, &key, &common),
        PinsCommand::Verify { server, common } => verify(&server, &common),
    }
}

/// Loads the config, opens the store, runs `f`, prints its text or fails with its reason.
fn with_store(
    common: &Common,
    f: impl FnOnce(&PinStore, &Config) -> Result<String, PinError>,
) -> i32 {
    let config = match load_config(common.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let store = PinStore::new(config::resolve(&state_dir(), &config.pins.dir));
    match f(&store, &config) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => pin_failure(&e),
    }
}

fn pin_failure(e: &PinError) -> i32 {
    let code = match e {
        PinError::BadServerName(_) => EXIT_USAGE,
        _ => EXIT_CHECK_FAILED,
    };
    let hint = match e {
        PinError::Untrusted {
            source: AttestationError::UnknownKey { .. },
            ..
        } => " (add its public key to [[identity.trusted_keys]] with role = \"operator\")",
        _ => "",
    };
    fail(code, &format!("{e}{hint}"))
}

fn sign(server: &str, key_file: &Path, common: &Common) -> i32 {
    let pem = match std::fs::read_to_string(key_file) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                EXIT_USAGE,
                &format!("cannot read {}: {e}", key_file.display()),
            )
        }
    };
    let key: SigningKey = match keys::signing_key_from_pem(&pem) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_USAGE, &format!("{}: {e}", key_file.display())),
    };
    with_store(common, |store, config| {
        let mut text = commands::sign(store, server, &key, SystemTime::now())?;
        let kid = keys::kid_of(&key.verifying_key());
        let role = trusted_keys(config)
            .ok()
            .and_then(|k| k.get(&kid).map(|t| t.role));
        if role != Some(KeyRole::Operator) {
            text.push_str(&format!(
                "note: key {kid} is not a trusted operator key in this config; `pins verify` and \
                 `[pins] require_signed` will refuse this attestation until it is added to \
                 [[identity.trusted_keys]] with role = \"operator\"\n"
            ));
        }
        Ok(text)
    })
}

fn verify(server: &str, common: &Common) -> i32 {
    let config = match load_config(common.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // All trusted keys, not only operators: a client key's attestation is then refused as the
    // wrong role rather than as an unknown key.
    let keys = match trusted_keys(&config) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_CONFIG, &format!("bad config: {e}")),
    };
    let store = PinStore::new(config::resolve(&state_dir(), &config.pins.dir));
    match commands::verify(&store, server, &keys) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => pin_failure(&e),
    }
}

/// `[[identity.trusted_keys]]` exactly as the proxy builds them.
fn trusted_keys(config: &Config) -> Result<TrustedKeys, String> {
    crate::pipeline::trusted_keys(config, None)
}
