//! Process lifecycle of `wrap`: exit status, answers for requests a dying server leaves behind,
//! escalation from closed stdin to SIGTERM to SIGKILL, signals to the proxy, and a stdout that
//! carries nothing but MCP.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn wrap(server_sh: &str, dir: &Path, grace: u64) -> Child {
    let cfg = dir.join("proxy.toml");
    std::fs::write(&cfg, format!("[proxy]\nshutdown_grace_secs = {grace}\n")).expect("config");
    Command::new(support::warden_bin())
        .args(["wrap", "--server", "sh", "--config"])
        .arg(&cfg)
        .args(["--", "sh", "-c", server_sh])
        .env("MCP_WARDEN_STATE", dir)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("try_wait") {
            use std::os::unix::process::ExitStatusExt;
            return Some(
                status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Running (a zombie waiting for a reaper that may never come in a container counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn read_pid(dir: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("pid")) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "server never wrote its pid");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exits_with_the_child_status_and_answers_what_was_pending() {
    let dir = tempfile::tempdir().expect("dir");
    // The server reads one request and dies without answering.
    let mut proxy = wrap("read line; exit 3", dir.path(), 2);
    let mut stdin = proxy.stdin.take().expect("stdin");
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/list\"}\n")
        .expect("write");
    let mut out = BufReader::new(proxy.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    let reply: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(reply["id"], 9);
    assert_eq!(reply["error"]["code"], -32603, "{reply}");
    assert_eq!(
        wait_with_timeout(&mut proxy, Duration::from_secs(10)),
        Some(3)
    );
}

#[test]
fn a_server_ignoring_eof_and_sigterm_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("dir");
    let script = "echo $$ > pid; trap '' TERM; sleep 1000 & echo $! > grandchild; while :; do sleep 0.2; done";
    let mut proxy = wrap(script, dir.path(), 1);
    let pid = read_pid(dir.path());
    let started = Instant::now();
    drop(proxy.stdin.take()); // client EOF
    let code = wait_with_timeout(&mut proxy, Duration::from_secs(10)).expect("proxy exits");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "escalated too early ({took:?})"
    );
    assert_eq!(code, 128 + libc::SIGKILL, "child status passed through");
    let grandchild: i32 = std::fs::read_to_string(dir.path().join("grandchild"))
        .expect("gc")
        .trim()
        .parse()
        .expect("pid");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!alive(pid), "server still running");
    assert!(!alive(grandchild), "server's child still running");
}

#[test]
fn sigterm_to_the_proxy_shuts_down_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let mut proxy = wrap("echo $$ > pid; exec cat >/dev/null", dir.path(), 2);
    let pid = read_pid(dir.path());
    // SAFETY: plain signal to our own child.
    unsafe { libc::kill(proxy.id() as i32, libc::SIGTERM) };
    let code =
        wait_with_timeout(&mut proxy, Duration::from_secs(10)).expect("proxy exits on SIGTERM");
    assert_eq!(code, 0, "cat exits cleanly once its stdin closes");
    assert!(!alive(pid));
}

#[test]
fn stdout_carries_only_mcp_even_when_the_server_prints_junk() {
    let dir = tempfile::tempdir().expect("dir");
    let server = r#"echo 'Starting server v1.2...'; printf '\033[32mready\033[0m\n'; read line; echo '{"jsonrpc":"2.0","id":1,"result":{}}'; read line"#;
    let mut proxy = wrap(server, dir.path(), 1);
    let mut stdin = proxy.stdin.take().expect("stdin");
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n")
        .expect("write");
    let mut out = BufReader::new(proxy.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("rest");
    assert_eq!(rest, "", "nothing but MCP on stdout");
    wait_with_timeout(&mut proxy, Duration::from_secs(10)).expect("exit");
    let audit_dir = dir.path().join("audit");
    let file = std::fs::read_dir(&audit_dir)
        .expect("audit")
        .next()
        .expect("file")
        .expect("entry")
        .path();
    let text = std::fs::read_to_string(file).expect("read");
    assert_eq!(
        text.matches("upstream.non_jsonrpc_output").count(),
        2,
        "both junk lines audited as drops"
    );
}

/// Two ordinary records written by a real `wrap` session into `file`.
fn write_audit_file(dir: &Path, file: &Path) {
    let mut child = Command::new(support::warden_bin())
        .args(["wrap", "--server", "echo", "--audit-file"])
        .arg(file)
        .arg("--")
        .arg(support::echo_server_bin())
        .env("MCP_WARDEN_STATE", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n")
        .expect("write");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reply");
    assert!(line.contains("\"result\""), "{line}");
    drop(stdin);
    assert_eq!(
        wait_with_timeout(&mut child, Duration::from_secs(10)),
        Some(0)
    );
}

fn audit_verify(file: &Path, key: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new(support::warden_bin());
    cmd.args(["audit", "verify"]).arg(file);
    if let Some(k) = key {
        cmd.arg("--key").arg(k);
    }
    let out = cmd.output().expect("audit verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Issue 9 (7c): `--audit-file` on a file whose last line is torn (a crash mid-write) used to
/// glue the next record onto it. The torn bytes are quarantined next to the file, the chain goes
/// on from the last whole line, an `audit.recovered` record says so, and `audit verify` passes
/// (with the signed checkpoints too).
#[test]
fn a_torn_audit_file_is_recovered_and_still_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    write_audit_file(dir.path(), &file);
    let torn = b"{\"v\":1,\"seq\":99,\"ts\":\"2026-01-01T00:00:00.0";
    let mut bytes = std::fs::read(&file).expect("audit file");
    let whole = bytes.len();
    bytes.extend_from_slice(torn);
    std::fs::write(&file, &bytes).expect("tear");

    write_audit_file(dir.path(), &file);
    let text = std::fs::read_to_string(&file).expect("audit file");
    assert!(text.ends_with('\n'));
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a whole record"))
        .collect();
    let rec = records
        .iter()
        .find(|r| r["event"] == "audit.recovered")
        .expect("an audit.recovered record");
    assert_eq!(rec["detail"]["torn_bytes"], torn.len());
    assert_eq!(rec["bytes"], torn.len());
    let quarantine = rec["detail"]["quarantine"]
        .as_str()
        .expect("quarantine path");
    assert!(quarantine.starts_with(&format!("{}.torn-", file.display())));
    assert_eq!(std::fs::read(quarantine).expect("quarantine"), torn);
    // Everything before the tear is unchanged.
    assert_eq!(
        text.as_bytes()[..whole],
        std::fs::read(&file).unwrap()[..whole]
    );

    let (code, out) = audit_verify(&file, None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = audit_verify(&file, Some(&dir.path().join("identity.pem")));
    assert_eq!(code, 0, "{out}");
}

/// Issue 9 (10): `audit verify` names the line that was edited, not the one after it.
#[test]
fn audit_verify_names_the_edited_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    write_audit_file(dir.path(), &file);
    let text = std::fs::read_to_string(&file).expect("audit file");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");
    let i = lines
        .iter()
        .position(|l| l.contains("\"method\":\"ping\""))
        .expect("the ping's record");
    assert!(
        i + 1 < lines.len(),
        "the ping's record is not the last line"
    );
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    edited[i] = edited[i].replacen("\"method\":\"ping\"", "\"method\":\"pong\"", 1);
    std::fs::write(&file, edited.join("\n") + "\n").expect("edit");
    let (code, out) = audit_verify(&file, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("broken at line {}:", i + 1)),
        "the edited line is {}: {out}",
        i + 1
    );
}
