//! The one `mcp-warden serve` process harness: the real binary on a free loopback port with a
//! given config, the addresses it announces on stderr (its listener, its admin port), its log,
//! and an orderly stop on drop (SIGTERM: stdio servers closed, audit flushed; SIGKILL only if it
//! does not exit in time). The HTTP, corpus and connect tests wrap it with their own helpers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `mcp-warden serve`.
pub struct ServeProc {
    child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// Everything it wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
}

enum Seen {
    Listening(String),
    Admin(String),
    BadConfig(String),
}

impl ServeProc {
    /// Start with the config file `config`, `MCP_WARDEN_STATE` = `state`, only the allow-all
    /// policy pack, the audit trail in `audit_file` when given, and `env` on top.
    pub fn start(
        config: &Path,
        state: &Path,
        audit_file: Option<&Path>,
        env: &[(&str, &str)],
    ) -> ServeProc {
        let allow_all = super::fixture("policies/allow-all");
        let allow_all = allow_all.to_str().expect("utf-8 fixture path");
        // Only the permissive pack: the built-in ones stay out of what tests compare.
        let mut all = vec![
            ("MCP_WARDEN_POLICY_DIR", allow_all),
            ("MCP_WARDEN_POLICY_BUILTIN", "false"),
        ];
        all.extend_from_slice(env);
        Self::start_as_configured(config, state, audit_file, &all)
    }

    /// `start` with the policy as the config and the built-in packs make it (what a user
    /// running this config gets), `env` on top.
    pub fn start_as_configured(
        config: &Path,
        state: &Path,
        audit_file: Option<&Path>,
        env: &[(&str, &str)],
    ) -> ServeProc {
        let mut cmd = Command::new(super::warden_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config);
        if let Some(f) = audit_file {
            cmd.arg("--audit-file").arg(f);
        }
        cmd.env("MCP_WARDEN_STATE", state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let seen = if let Some(a) = line.split("listening on http://").nth(1) {
                    Some(Seen::Listening(a.trim().to_owned()))
                } else if let Some(a) = line.split("admin on http://").nth(1) {
                    Some(Seen::Admin(a.trim().to_owned()))
                } else if line.contains("bad config") {
                    Some(Seen::BadConfig(line.clone()))
                } else {
                    None
                };
                if let Some(s) = seen {
                    let _ = tx.send(s);
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&(line + "\n"));
            }
        });
        let mut admin = None;
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(Seen::Admin(a)) => admin = a.parse().ok(),
                Ok(Seen::Listening(a)) => break a.parse().expect("addr"),
                Ok(Seen::BadConfig(line)) => panic!("serve did not start: {line}"),
                Err(_) => panic!(
                    "serve did not start: {}",
                    log.lock().unwrap_or_else(|p| p.into_inner())
                ),
            }
        };
        ServeProc {
            child,
            addr,
            admin,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl ServeProc {
    /// The orderly stop (SIGTERM: stdio servers closed, audit flushed, telemetry drained);
    /// SIGKILL only if it has not exited within 5 s. Its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            // Already reaped: its pid may belong to someone else now, never signal it.
            return status;
        }
        // SAFETY: a plain syscall on our own, not yet reaped child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().expect("wait for serve")
    }
}

impl Drop for ServeProc {
    fn drop(&mut self) {
        self.terminate();
    }
}
