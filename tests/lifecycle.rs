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
    // The scripts write pid files into `dir`, the state dir, which the Landlock sandbox hides
    // from the server (see `transport::landlock`): it is off for these lifecycle tests.
    std::fs::write(
        &cfg,
        format!("[proxy]\nshutdown_grace_secs = {grace}\nsandbox_child = false\n"),
    )
    .expect("config");
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
    // A generous grace: on a loaded machine cat may need more than a second to see EOF.
    let mut proxy = wrap("echo $$ > pid; exec cat >/dev/null", dir.path(), 8);
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

/// A server answer over `proxy.max_message_bytes` is discarded, but the request it answered
/// still gets exactly one answer (-32603 naming the limit), its id is free again, and the
/// session goes on. The id is found at either end of the discarded line.
#[test]
fn an_oversized_server_answer_is_answered_with_an_error() {
    let big = "x".repeat(20_000);
    let script = serde_json::json!({
        "huge_first": [format!(r#"{{"jsonrpc":"2.0","id":{{{{id}}}},"result":{{"content":[{{"type":"text","text":"{big}"}}]}}}}"#)],
        "huge_last": [format!(r#"{{"jsonrpc":"2.0","result":{{"content":[{{"type":"text","text":"{big}"}}]}},"id":{{{{id}}}}}}"#)],
    });
    let mut w = support::Wrapped::start(support::Options {
        script: Some(script),
        config: Some("[proxy]\nmax_message_bytes = 4096\n".into()),
        ..Default::default()
    });
    w.initialize();
    for (id, tool) in [("a", "huge_first"), ("b", "huge_last")] {
        w.send(&serde_json::json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{}}}));
        let r = w.recv();
        assert_eq!(r["id"], id, "{r}");
        assert_eq!(r["error"]["code"], -32603, "{r}");
        let reason = r["error"]["data"]["reason"].as_str().unwrap_or("");
        assert!(reason.contains("max_message_bytes"), "{r}");
        // The id was freed: reusing it is not "still in flight".
        w.send(&serde_json::json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"text":"again"}}}));
        let again = w.recv();
        assert_eq!(again["result"]["content"][0]["text"], "again", "{again}");
    }
    let audit = w.audit();
    let oversize: Vec<&Value> = audit
        .iter()
        .filter(|r| r["event"] == "upstream.oversize_answer")
        .collect();
    assert_eq!(
        oversize.len(),
        2,
        "one record per discarded answer: {audit:#?}"
    );
    assert_eq!(w.finish(), 0);
}

/// `--audit-file /dev/full`: every write fails. With the default `audit.on_failure = "refuse"`
/// calls are refused (-32603) once the sink is known to fail and never reach the server; with
/// `forward` they pass.
#[test]
fn calls_are_refused_while_the_audit_trail_cannot_be_written() {
    for (on_failure, refused) in [("refuse", true), ("forward", false)] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("proxy.toml");
        std::fs::write(&cfg, format!("[audit]\non_failure = \"{on_failure}\"\n")).unwrap();
        let record = dir.path().join("upstream.log");
        let mut child = Command::new(support::warden_bin())
            .args(["wrap", "--server", "echo", "--config"])
            .arg(&cfg)
            .args(["--audit-file", "/dev/full", "--"])
            .arg(support::echo_server_bin())
            .env("MCP_WARDEN_STATE", dir.path().join("state"))
            .env("ECHO_RECORD", &record)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut ask = |id: String, method: &str, params: Value| -> Value {
            let msg = serde_json::json!({"jsonrpc":"2.0","id":id,"method":method,"params":params});
            writeln!(stdin, "{msg}").unwrap();
            stdin.flush().unwrap();
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
        };
        ask(
            "init".into(),
            "initialize",
            serde_json::json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
        );
        ask("list".into(), "tools/list", serde_json::json!({}));
        // The flusher finds the sink failing within ~100 ms; poll until the proxy knows.
        // (Forward mode: a second of calls, well past several failed flushes, all pass.)
        let deadline = Instant::now() + Duration::from_secs(if refused { 5 } else { 1 });
        let mut n = 0;
        let last = loop {
            n += 1;
            let r = ask(
                format!("c{n}"),
                "tools/call",
                serde_json::json!({"name":"echo","arguments":{"text":"hi"}}),
            );
            if r.get("error").is_some() || Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if refused {
            assert_eq!(last["error"]["code"], -32603, "{last}");
            assert_eq!(last["error"]["data"]["rule"], "audit", "{last}");
            // Even this error names the record it could not write.
            let audit_id = last["error"]["data"]["audit_id"].as_str().unwrap_or("");
            assert!(!audit_id.is_empty(), "{last}");
            assert!(
                last["error"]["data"]["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("audit"),
                "{last}"
            );
            let id = format!("c{n}");
            let seen = std::fs::read_to_string(&record).unwrap_or_default();
            assert!(
                !seen.contains(&format!("\"{id}\"")),
                "the refused call reached the server"
            );
            // And it stays refused.
            let again = ask(
                "z".into(),
                "tools/call",
                serde_json::json!({"name":"echo","arguments":{"text":"hi"}}),
            );
            assert_eq!(again["error"]["code"], -32603, "{again}");
        } else {
            assert!(last.get("result").is_some(), "forward mode: {last}");
        }
        drop(stdin);
        let _ = child.wait();
    }
}

/// Issue 9.2 a/e: the server runs without the proxy's `MCP_WARDEN_*` variables and, where the
/// kernel has Landlock, cannot read or write the state dir (approvals, pins, keys).
#[test]
fn the_server_sees_no_warden_env_and_cannot_touch_the_state_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, out) = (dir.path().join("state"), dir.path().join("out"));
    std::fs::create_dir_all(state.join("approvals")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(state.join("secret.txt"), "s3cret").unwrap();
    let (s, o) = (state.display(), out.display());
    let script = format!(
        "env > {o}/env.txt; cat {s}/secret.txt > {o}/read.txt 2>/dev/null; \
         echo approved > {s}/approvals/x.json 2>/dev/null; echo x >> {s}/secret.txt 2>/dev/null; \
         rm -f {s}/secret.txt 2>/dev/null; ls {s}/.. > {o}/ls-parent.txt 2>/dev/null; \
         echo done > {o}/done; exec cat > /dev/null"
    );
    let mut child = Command::new(support::warden_bin())
        .args(["wrap", "--server", "sh", "--", "sh", "-c", &script])
        .env("MCP_WARDEN_STATE", &state)
        .env("MCP_WARDEN_LOG", "warn")
        // Opt-in (see proxy.toml): the sandbox and its cost on the state dir's ancestors.
        .env("MCP_WARDEN_PROXY_SANDBOX_CHILD", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.join("done").exists() {
        assert!(
            Instant::now() < deadline,
            "the server script never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let env = std::fs::read_to_string(out.join("env.txt")).unwrap();
    assert!(!env.contains("MCP_WARDEN_"), "child env leaks: {env}");
    assert!(env.contains("PATH="), "the rest of the env is kept");
    // SAFETY: the Landlock ABI query (create_ruleset with no attributes, flag VERSION).
    let abi = unsafe { libc::syscall(444, std::ptr::null::<u8>(), 0usize, 1u32) };
    let landlock = abi >= 1;
    if landlock {
        let read = std::fs::read_to_string(out.join("read.txt")).unwrap_or_default();
        assert_eq!(read, "", "the child read the state dir");
        assert!(
            !state.join("approvals/x.json").exists(),
            "the child wrote into the state dir"
        );
        assert_eq!(
            std::fs::read_to_string(state.join("secret.txt")).unwrap(),
            "s3cret",
            "the child changed or removed a file in the state dir"
        );
        // Listing stays possible along the way down (ancestors keep READ_DIR, see
        // `transport::landlock`): a filesystem server rooted above the state dir still works.
        let ls = std::fs::read_to_string(out.join("ls-parent.txt")).unwrap_or_default();
        assert!(
            ls.contains("state"),
            "cannot list the state dir's parent: {ls:?}"
        );
    }
    drop(child.stdin.take());
    assert_eq!(
        wait_with_timeout(&mut child, Duration::from_secs(10)),
        Some(0)
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
