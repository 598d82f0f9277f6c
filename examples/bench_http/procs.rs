//! The processes under test (the echo server, `mcp-warden serve`). What /proc says about them
//! is in `bench_common`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::Res;

/// A child that prints `listening on http://ADDR` on stderr; its other stderr lines are passed
/// on to ours. Killed (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(mut cmd: Command, what: &str) -> Res<Server> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {what} ({cmd:?}): {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        let label = what.to_owned();
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.split("listening on http://").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(a.trim().to_owned());
                        continue;
                    }
                }
                eprintln!("[{label}] {line}");
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30));
        let mut s = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        s.addr = addr
            .map_err(|_| format!("{what} did not print its address"))?
            .parse()
            .map_err(|e| format!("{what}: bad address: {e}"))?;
        Ok(s)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: a plain syscall on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
