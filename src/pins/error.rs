//! What can go wrong with pins. Each message is a one-line reason a person can act on: the CLI
//! prints it as the exit reason and the runtime puts it into the audit record.

use std::path::PathBuf;

use crate::sig::{AttestationError, JcsError};

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("server name {0:?} cannot name a pin file: use letters, digits, '.', '_', '-', '@', '+' (not starting with '.')")]
    BadServerName(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid pin file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error(
        "{path}: pinned {what} {name:?} does not match its recorded sha256 (file edited by hand?)"
    )]
    HashMismatch {
        path: PathBuf,
        what: &'static str,
        name: String,
    },
    #[error("{path}: belongs to server {found:?}, not {wanted:?}")]
    WrongServer {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("cannot canonicalize a definition: {0}")]
    Jcs(#[from] JcsError),
    #[error("pins for server {server:?} are not trusted: {source}")]
    Untrusted {
        server: String,
        #[source]
        source: AttestationError,
    },
    #[error("no pin file for server {0:?}")]
    NoPins(String),
    #[error(
        "server {server:?} has nothing held named {name:?} (see `mcp-warden pins diff {server}`)"
    )]
    NotHeld { server: String, name: String },
}

impl PinError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        PinError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
