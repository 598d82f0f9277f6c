//! Several proxy processes recording into one trust file: no lost update, no torn file.
//!
//! Separate processes, not threads: `flock` and rename semantics are what is under test, and
//! threads of one process would share state a real deployment does not. The test binary re-runs
//! itself (`current_exe`) filtered to `child_writer`, with an env var on the child's command line
//! selecting the child mode; the parent's environment is never modified.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::buckets::{Counter, History};
use super::events::{Event, Observation};
use super::recorder::{system_clock, TrustRecorder};
use super::store::TrustStore;

const CHILD_ENV: &str = "MCP_WARDEN_TRUST_TEST_CHILD";
const PROCESSES: u64 = 4;
/// Direct updates per child (each a locked read-modify-write)…
const UPDATES: u64 = 60;
/// …plus observations through a recorder flushing every few of them.
const RECORDED: u64 = 40;
const SERVER: &str = "shared";

/// The child's body; a no-op when the test harness runs it normally.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = TrustStore::new(Path::new(&dir));
    let now = system_clock()();
    for _ in 0..UPDATES {
        let mut batch = History::new(SERVER);
        batch.apply(&Event::new(now, Observation::CallOk));
        store.update(SERVER, &batch, now).unwrap();
    }
    let rec = TrustRecorder::new(store, SERVER, system_clock());
    for i in 0..RECORDED {
        rec.record(Observation::CallAllowed);
        if i % 7 == 0 {
            rec.flush().unwrap();
        }
    }
    // The rest goes out when the recorder is dropped.
}

/// `module::path::child_writer` as libtest names it (without the crate name).
fn child_test_name() -> String {
    let path = module_path!();
    let in_crate = path.split_once("::").map_or(path, |(_, rest)| rest);
    format!("{in_crate}::child_writer")
}

#[test]
fn four_processes_lose_no_update_and_never_tear_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    child_test_name().as_str(),
                    "--exact",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(CHILD_ENV, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    // While they write, every read must see a complete file (or none yet).
    let store = TrustStore::new(dir.path());
    let path = store.path_of(SERVER).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut reads = 0u32;
    let mut outputs = Vec::new();
    let mut running = children;
    while !running.is_empty() {
        if let Ok(bytes) = std::fs::read(&path) {
            let parsed: Result<History, _> = serde_json::from_slice(&bytes);
            assert!(
                parsed.is_ok(),
                "torn file: {}",
                String::from_utf8_lossy(&bytes)
            );
            reads += 1;
        }
        let mut still = Vec::new();
        for mut child in running {
            match child.try_wait().unwrap() {
                Some(_) => outputs.push(child.wait_with_output().unwrap()),
                None => still.push(child),
            }
        }
        running = still;
        assert!(Instant::now() < deadline, "children did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }

    for out in &outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "child ran the wrong test: {stdout}"
        );
    }
    let h = store.load(SERVER).unwrap();
    let now = system_clock()();
    assert_eq!(
        h.total(Counter::CallsOk, now),
        PROCESSES * UPDATES,
        "lost update"
    );
    assert_eq!(
        h.total(Counter::Allowed, now),
        PROCESSES * RECORDED,
        "lost recorder batch"
    );
    // Informational: on a loaded machine the children may finish between two polls.
    eprintln!("{reads} concurrent reads, none torn");
}
