//! A stdio server's exit, awaited on the runtime instead of by a thread parked in `wait(2)`:
//! a pidfd (Linux ≥ 5.3) turns readable when the process exits, the reactor wakes the waiting
//! task, and `try_wait` reaps it. Without pidfds (an older kernel, another Unix) each SIGCHLD
//! wakes the waiter to `try_wait` again (what tokio's own process reaper does). The process was
//! spawned by `child::spawn` (pool), so it stays a `std::process::Child` throughout.

use std::io;
use std::process::{Child, ExitStatus};

/// Wait for `child` to exit and reap it. Until this returns, the pid (and so its process group
/// id) cannot be reused: signalling the group meanwhile is safe.
pub async fn exited(child: Child) -> io::Result<ExitStatus> {
    #[cfg(target_os = "linux")]
    match pidfd::open(&child) {
        Ok(fd) => return pidfd::wait(fd, child).await,
        Err(e) => tracing::debug!("no pidfd ({e}): waiting for SIGCHLD instead"),
    }
    by_sigchld(child).await
}

/// The fallback: `try_wait` again at every SIGCHLD.
async fn by_sigchld(mut child: Child) -> io::Result<ExitStatus> {
    // Registered before the first `try_wait`: an exit between the two is not missed.
    let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if sigchld.recv().await.is_none() {
            return Err(io::Error::other("SIGCHLD stream ended"));
        }
    }
}

#[cfg(target_os = "linux")]
mod pidfd {
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::{Child, ExitStatus};

    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    pub fn open(child: &Child) -> io::Result<AsyncFd<OwnedFd>> {
        // SAFETY: a plain syscall. The pid is our own child, not reaped yet, so it names that
        // process (a zombie at worst), never a reused pid.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        // SAFETY: the `OwnedFd` stays open and unchanged for as long as the `AsyncFd` owns it.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(io::Error::from)
    }

    pub async fn wait(fd: AsyncFd<OwnedFd>, mut child: Child) -> io::Result<ExitStatus> {
        loop {
            let mut ready = fd.readable().await?;
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            ready.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// An exit is seen without a thread of its own, its status intact, and a process that is
    /// still running is not reported as gone.
    #[tokio::test(flavor = "current_thread")]
    async fn an_exit_is_awaited_and_reaped() {
        let child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        assert_eq!(exited(child).await.unwrap().code(), Some(3));
        let child = Command::new("sleep").arg("5").spawn().unwrap();
        let pid = child.id();
        let wait = tokio::spawn(exited(child));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!wait.is_finished());
        // SAFETY: our own child's pid, not reaped yet (the waiter still holds it).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let status = wait.await.unwrap().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    /// The same without pidfds.
    #[tokio::test(flavor = "current_thread")]
    async fn the_fallback_waits_for_sigchld() {
        let child = Command::new("sh")
            .args(["-c", "sleep 0.2; exit 4"])
            .spawn()
            .unwrap();
        assert_eq!(by_sigchld(child).await.unwrap().code(), Some(4));
    }
}
