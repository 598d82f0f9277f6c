//! The wrapped server process: spawned in its own process group (so that stopping it also stops
//! what it started, e.g. `npx` → `node`), asked to die with us, and signalled as a group.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

pub use super::landlock::Sandbox;
use crate::config::{EnvSource, ProcessEnv};

/// Start `argv` with piped stdin/stdout and our stderr, without our own `MCP_WARDEN_*`
/// variables (the server must not learn where the proxy keeps its state).
pub fn spawn(argv: &[String]) -> io::Result<Child> {
    spawn_in(argv, None)
}

type StarterJob = Box<dyn FnOnce() + Send>;

/// Run `job` on the process-starter thread: one thread that lives as long as the proxy, where
/// `serve` starts its servers. The parent-death signal is tied to the *thread* that started a
/// child, not the process: a child started on a thread that later exits (tokio's blocking
/// threads exit after ~10 s idle) would be sent SIGTERM then, under its session. `Err(job)`:
/// there is no such thread (it could not be created); the job is handed back.
pub fn on_starter(job: StarterJob) -> Result<(), StarterJob> {
    use std::sync::mpsc;
    use std::sync::OnceLock;
    static STARTER: OnceLock<Option<mpsc::Sender<StarterJob>>> = OnceLock::new();
    let starter = STARTER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<StarterJob>();
        let started = std::thread::Builder::new()
            .name("process-starter".into())
            // Never ends: the sender lives in the static.
            .spawn(move || rx.into_iter().for_each(|job| job()));
        match started {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("no process-starting thread ({e}); servers start on the caller's");
                None
            }
        }
    });
    match starter {
        Some(tx) => tx.send(job).map_err(|e| e.0),
        None => Err(job),
    }
}

/// [`spawn`] on the process-starter thread ([`on_starter`]), waiting for the result.
pub fn spawn_lasting(argv: &[String]) -> io::Result<Child> {
    let (reply, answer) = std::sync::mpsc::channel();
    let owned = argv.to_vec();
    let job: StarterJob = Box::new(move || {
        let _ = reply.send(spawn(&owned));
    });
    if let Err(job) = on_starter(job) {
        job();
    }
    answer
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the process-starting thread is gone")))
}

/// Like [`spawn`]; with a sandbox, the child is confined by it before it runs (Landlock: no
/// access to the proxy's state dir).
pub fn spawn_in(argv: &[String], sandbox: Option<Arc<Sandbox>>) -> io::Result<Child> {
    let (program, args) = argv.split_first().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "no server command given after --",
        )
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    for (name, _) in ProcessEnv.vars_with_prefix(OWN_ENV_PREFIX) {
        cmd.env_remove(name);
    }
    // SAFETY: prctl and the Landlock syscalls are async-signal-safe and touch no memory of the
    // parent. If the proxy is killed outright (kill -9), the kernel sends the child SIGTERM
    // instead of orphaning it.
    unsafe {
        cmd.pre_exec(move || {
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if let Some(s) = &sandbox {
                s.restrict_self()?;
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// The prefix of the proxy's own environment variables, removed from every child's environment.
pub const OWN_ENV_PREFIX: &str = "MCP_WARDEN_";

/// The sandbox for `wrap`'s child when `proxy.sandbox_child` is on: `None` (with one line on
/// stderr saying why) where the kernel or the state dir does not allow it.
pub fn state_sandbox(state: &Path) -> Option<Arc<Sandbox>> {
    match Sandbox::deny_dir(state) {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            eprintln!("mcp-warden: the server runs without a sandbox: {e}");
            None
        }
    }
}

/// Send `signal` to the child's whole process group.
pub fn signal_group(pid: u32, signal: i32) {
    // SAFETY: plain syscall; a stale pid group only yields ESRCH.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// The exit code a shell would report for this status: the code, or 128 + signal.
pub fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(1))
}

/// A short server name from a command line: `npx -y @modelcontextprotocol/server-filesystem /d`
/// → `filesystem`, `uvx mcp-server-fetch` → `fetch`, `python server.py` → `server`.
pub fn derive_server_name(argv: &[String]) -> String {
    const LAUNCHERS: &[&str] = &[
        "npx", "node", "nodejs", "python", "python3", "uv", "uvx", "run", "docker", "deno", "bun",
        "bunx", "pnpm", "dlx", "yarn", "npm", "exec", "pipx", "sh", "bash", "env", "tsx",
        "ts-node",
    ];
    let token = argv
        .iter()
        .map(|a| a.rsplit(['/', '\\']).next().unwrap_or(a))
        .zip(argv.iter())
        .find(|(base, full)| {
            !full.starts_with('-') && !LAUNCHERS.contains(base) && !base.is_empty()
        })
        .map(|(_, full)| full.as_str())
        .unwrap_or("server");
    // Drop an npm scope and path, then a version suffix and a file extension. An entry file
    // with a generic name (`…/server-everything/dist/index.js`) is named by its package dir.
    let mut name = package_component(token).to_owned();
    if let Some(at) = name.rfind('@').filter(|&i| i > 0) {
        name.truncate(at);
    }
    for ext in [".js", ".mjs", ".cjs", ".ts", ".py", ".exe"] {
        if let Some(stripped) = name.strip_suffix(ext) {
            name = stripped.to_owned();
        }
    }
    for prefix in ["mcp-server-", "server-", "mcp-"] {
        if let Some(s) = name.strip_prefix(prefix).filter(|s| !s.is_empty()) {
            name = s.to_owned();
            break;
        }
    }
    for suffix in ["-mcp-server", "-server", "_server", "-mcp"] {
        if let Some(s) = name.strip_suffix(suffix).filter(|s| !s.is_empty()) {
            name = s.to_owned();
            break;
        }
    }
    let clean = crate::fsutil::safe_name(&name.to_ascii_lowercase(), &['-', '_'], '-');
    if clean.is_empty() {
        "server".into()
    } else {
        clean
    }
}

/// The meaningful path component of a command token: its file name, unless that is a generic
/// entry point (`index.js`, `main.py`, `cli.mjs`), then the nearest directory that is not a
/// build folder (`dist`, `build`, `lib`, `src`, `bin`, `out`).
fn package_component(token: &str) -> &str {
    const GENERIC: &[&str] = &["index", "main", "cli", "server", "app", "__main__", "run"];
    const BUILD_DIRS: &[&str] = &["dist", "build", "lib", "src", "bin", "out", "esm", "cjs"];
    let mut parts = token.rsplit(['/', '\\']).filter(|p| !p.is_empty());
    let file = parts.next().unwrap_or(token);
    let stem = file.split('.').next().unwrap_or(file);
    if !GENERIC.contains(&stem) || !token.contains(['/', '\\']) {
        return file;
    }
    parts.find(|p| !BUILD_DIRS.contains(p)).unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::derive_server_name;

    fn name(cmd: &str) -> String {
        derive_server_name(&cmd.split(' ').map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn derives_readable_names() {
        assert_eq!(
            name("npx -y @modelcontextprotocol/server-filesystem /data"),
            "filesystem"
        );
        assert_eq!(
            name("npx -y @modelcontextprotocol/server-everything@2026.8.31 stdio"),
            "everything"
        );
        assert_eq!(name("uvx mcp-server-fetch"), "fetch");
        assert_eq!(name("node /opt/servers/github-mcp-server.js"), "github");
        assert_eq!(name("python3 tests/echo_server.py"), "echo");
        assert_eq!(name("/usr/local/bin/postgres-mcp --dsn x"), "postgres");
        assert_eq!(
            name(
                "node /x/node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio"
            ),
            "everything"
        );
        assert_eq!(name("python3 -m app/main.py"), "app");
    }
}
