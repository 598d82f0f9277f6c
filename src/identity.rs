//! This proxy's own Ed25519 key (`[identity] key`, default `identity.pem` in the state dir):
//! it signs audit checkpoints and, in `serve`, responses. Created on first use with mode 0600
//! so that a fresh install has a tamper-evident trail without any set-up.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ed25519_dalek::SigningKey;

use crate::sig::keys;

/// Load the key at `path`, or create one there if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<SigningKey, String> {
    match std::fs::read_to_string(path) {
        Ok(pem) => keys::signing_key_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn create(path: &Path) -> Result<SigningKey, String> {
    let key = keys::generate_signing_key();
    let pem = keys::signing_key_to_pem(&key).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // Several processes may start at once (desktop hosts launch 2–5 `wrap`s): the key is written
    // to a private temp file and published with `link`, which is atomic and never overwrites, so
    // nobody ever reads a half-written key and the first writer's key wins.
    let tmp = path.with_extension(format!("pem.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(pem.as_bytes()).and_then(|_| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", tmp.display()));
    }
    let published = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match published {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(e) => Err(format!("cannot write {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_once_with_private_mode_and_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/identity.pem");
        let a = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.verifying_key(), b.verifying_key());
        std::fs::write(&path, "garbage").unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
