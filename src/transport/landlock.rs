//! Linux Landlock for the wrapped server: the child may touch anything on the machine except the
//! proxy's state dir (approvals, pins, trust, keys, audit), which it runs beside as the same user.
//!
//! Landlock only allows, it cannot deny a subtree. So the ruleset handles every filesystem right
//! the kernel knows and grants all of them on each *sibling* along the path from `/` down to the
//! state dir: at `/` everything but `home`, in `/home` everything but `u`, …, in the state dir's
//! parent everything but the state dir. The state dir and all beneath it get nothing but a listing.
//!
//! The ruleset is built in the parent (allocation, directory listing); the child only calls
//! `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self` between fork and exec, both
//! async-signal-safe. Raw syscalls via `libc`, no crate.
//!
//! The ancestors themselves get only `READ_DIR` (Landlock rights inherit downwards, so this also
//! lets the child list the names in the state dir, never read or write what is in them): without
//! it a filesystem server rooted at `$HOME` or `/` could not list its own root, since the default
//! state dir lives under `$HOME`.
//!
//! Limits, by construction: the child cannot create, rename or remove entries directly in an
//! ancestor (e.g. a new file in `$HOME` when the state dir is `~/.local/state/mcp-warden`); an
//! entry created in an ancestor after the child started is not covered and so is inaccessible to
//! it; files the child already had open are unaffected; rights newer than the running kernel's
//! ABI are not enforced; names inside the state dir can be listed.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const SYS_CREATE_RULESET: libc::c_long = 444;
const SYS_ADD_RULE: libc::c_long = 445;
const SYS_RESTRICT_SELF: libc::c_long = 446;
const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_long = 1;

/// Rights that apply to files (the kernel rejects directory rights on a file rule).
const FILE_RIGHTS: u64 = 1 | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15);
/// `LANDLOCK_ACCESS_FS_READ_DIR`: all the ancestors of the state dir get.
const READ_DIR: u64 = 1 << 3;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// A prepared ruleset: apply it in the child with [`Sandbox::restrict_self`].
#[derive(Debug)]
pub struct Sandbox {
    ruleset: OwnedFd,
}

/// Every filesystem right of this Landlock ABI.
fn handled_rights(abi: i64) -> u64 {
    let mut rights = (1u64 << 13) - 1; // ABI 1: EXECUTE … MAKE_SYM
    if abi >= 2 {
        rights |= 1 << 13; // REFER
    }
    if abi >= 3 {
        rights |= 1 << 14; // TRUNCATE
    }
    if abi >= 5 {
        rights |= 1 << 15; // IOCTL_DEV
    }
    rights
}

fn abi() -> i64 {
    // SAFETY: the version query takes no attribute pointer.
    unsafe {
        libc::syscall(
            SYS_CREATE_RULESET,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    }
}

/// The sibling entries to grant: at each ancestor of `target`, every entry but the one leading
/// to `target`. `target` must be absolute and canonical.
fn siblings(target: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ancestor in target.ancestors().skip(1) {
        let below: PathBuf = match target.strip_prefix(ancestor) {
            Ok(rest) => match rest.components().next() {
                Some(c) => ancestor.join(c),
                None => continue,
            },
            Err(_) => continue,
        };
        let Ok(entries) = std::fs::read_dir(ancestor) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p != below {
                out.push(p);
            }
        }
    }
    out
}

impl Sandbox {
    /// Build the ruleset that hides `state` from a child. `Err` says why not (unsupported
    /// kernel, state dir missing); the caller logs it once and goes on without a sandbox.
    pub fn deny_dir(state: &Path) -> Result<Sandbox, String> {
        let target = state
            .canonicalize()
            .map_err(|e| format!("state dir {}: {e}", state.display()))?;
        let abi = abi();
        if abi < 1 {
            return Err(format!(
                "Landlock is not available on this kernel ({})",
                std::io::Error::last_os_error()
            ));
        }
        let handled = handled_rights(abi);
        let attr = RulesetAttr {
            handled_access_fs: handled,
        };
        // SAFETY: attr outlives the call; its size is passed.
        let fd = unsafe {
            libc::syscall(
                SYS_CREATE_RULESET,
                &attr as *const RulesetAttr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if fd < 0 {
            return Err(format!(
                "landlock_create_ruleset: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a fresh descriptor the kernel just gave us (close-on-exec by default).
        let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let ancestors = target.ancestors().skip(1).map(Path::to_path_buf);
        let grants = siblings(&target)
            .into_iter()
            .map(|p| (p, None))
            .chain(ancestors.map(|p| (p, Some(READ_DIR))));
        for (path, only) in grants {
            // A symlink that leads into the state dir must not open it up again.
            let resolved = path.canonicalize().unwrap_or_else(|_| path.clone());
            if resolved.starts_with(&target) {
                continue;
            }
            // O_PATH: never blocks (a FIFO sibling) and needs no read permission.
            let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH)
                .open(&resolved)
            else {
                continue;
            };
            let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
            let full = if is_dir {
                handled
            } else {
                handled & FILE_RIGHTS
            };
            let rule = PathBeneathAttr {
                allowed_access: only.map_or(full, |r| r & full),
                parent_fd: file.as_raw_fd(),
            };
            // SAFETY: rule outlives the call; the fd is open.
            let rc = unsafe {
                libc::syscall(
                    SYS_ADD_RULE,
                    ruleset.as_raw_fd(),
                    RULE_PATH_BENEATH,
                    &rule as *const PathBeneathAttr,
                    0u32,
                )
            };
            if rc < 0 {
                tracing::debug!(
                    "landlock rule for {}: {}",
                    resolved.display(),
                    std::io::Error::last_os_error()
                );
            }
        }
        Ok(Sandbox { ruleset })
    }

    /// Enforce the ruleset on the calling process. Only async-signal-safe calls: this runs in
    /// the child between fork and exec.
    pub fn restrict_self(&self) -> std::io::Result<()> {
        // SAFETY: plain syscalls on an open descriptor.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(SYS_RESTRICT_SELF, self.ruleset.as_raw_fd(), 0u32) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_skip_the_branch_to_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in ["a/state/inner", "a/other", "b"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("a/file"), "x").unwrap();
        let s = siblings(&root.join("a/state"));
        assert!(s.contains(&root.join("a/other")));
        assert!(s.contains(&root.join("a/file")));
        assert!(s.contains(&root.join("b")));
        assert!(!s.iter().any(|p| p.starts_with(root.join("a/state"))));
        assert!(!s.contains(&root.join("a")));
    }
}
