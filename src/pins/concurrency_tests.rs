//! Several proxies for one server share its pin files (SPEC §5): no lost update, no torn file.
//! Threads, and separate processes: the test binary re-runs itself with `PINS_CHILD_*` set, so
//! the locks are exercised across real process boundaries.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};

use super::baseline::{Baseline, BaselineConfig};
use super::decision::PinEvent;
use super::file::{Kind, Origin};
use super::held::{HeldFile, HeldItem, HeldReason};
use super::scan::no_scanner;
use super::store::PinStore;

const WORKERS: usize = 4;
const UPDATES: usize = 40;
const SERVER: &str = "shared";

/// One read-modify-write: bump this worker's counter in the pin file and hold one item in the
/// held file. A lost update shows up as a counter short of `UPDATES` or a missing held item.
fn bump(store: &PinStore, worker: &str, i: usize) {
    store
        .update(SERVER, |snap| {
            let mut pin = snap.pin.take().unwrap_or_else(|| json!({"counters": {}}));
            let n = pin["counters"][worker].as_u64().unwrap_or(0);
            pin["counters"][worker] = json!(n + 1);
            // Some bulk, so a torn write would be likely to cut through the JSON.
            pin["padding"] = json!("x".repeat(4096 + i));
            snap.pin = Some(pin);
            let held = snap
                .held
                .get_or_insert_with(|| HeldFile::new(SERVER, Origin::Url { url: "u".into() }));
            held.hold(
                Kind::Tool,
                &format!("{worker}-{i}"),
                HeldItem {
                    reason: HeldReason::New,
                    sha256: "00".into(),
                    definition: json!({"name": format!("{worker}-{i}")}),
                    findings: vec![],
                    exposed: false,
                    first_seen: "t".into(),
                },
            );
            Ok(())
        })
        .unwrap();
}

/// Reads the files without any lock until `stop`, failing on anything that does not parse.
fn watch_for_torn_files(dir: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let paths = PinStore::new(dir).paths(SERVER).unwrap();
    std::thread::spawn(move || {
        let mut reads = 0;
        while !stop.load(Ordering::Relaxed) {
            for path in [&paths.pin, &paths.held] {
                if let Ok(bytes) = std::fs::read(path) {
                    serde_json::from_slice::<Value>(&bytes)
                        .unwrap_or_else(|e| panic!("torn {}: {e}", path.display()));
                    reads += 1;
                }
            }
        }
        reads
    })
}

fn assert_no_lost_update(store: &PinStore, workers: &[String]) {
    let snap = store.read(SERVER).unwrap();
    let pin = snap.pin.unwrap();
    let held = snap.held.unwrap();
    for w in workers {
        assert_eq!(pin["counters"][w], json!(UPDATES), "worker {w}: {pin:?}");
        for i in 0..UPDATES {
            assert!(
                held.get(Kind::Tool, &format!("{w}-{i}")).is_some(),
                "{w}-{i}"
            );
        }
    }
    let leftovers = std::fs::read_dir(store.dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn threads_share_the_store_safely() {
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_for_torn_files(dir.path(), stop.clone());
    let workers: Vec<String> = (0..WORKERS).map(|n| format!("thread{n}")).collect();
    let handles: Vec<_> = workers
        .iter()
        .cloned()
        .map(|w| {
            // Each thread its own store value, as separate proxies would have.
            let store = PinStore::new(dir.path());
            std::thread::spawn(move || (0..UPDATES).for_each(|i| bump(&store, &w, i)))
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);
    assert_no_lost_update(&PinStore::new(dir.path()), &workers);
}

const CHILD_DIR: &str = "PINS_CHILD_DIR";
const CHILD_WORKER: &str = "PINS_CHILD_WORKER";

/// This test's name as the harness knows it (crate name stripped), so the child can select it.
fn this_test() -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    format!("{module}::processes_share_the_store_safely")
}

#[test]
fn processes_share_the_store_safely() {
    if let (Ok(dir), Ok(worker)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_WORKER)) {
        let store = PinStore::new(dir);
        if worker.starts_with("tofu") {
            first_contact(&store, &worker);
        } else {
            (0..UPDATES).for_each(|i| bump(&store, &worker, i));
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_for_torn_files(dir.path(), stop.clone());
    let workers: Vec<String> = (0..WORKERS).map(|n| format!("proc{n}")).collect();
    run_children(dir.path(), &workers);
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_no_lost_update(&PinStore::new(dir.path()), &workers);

    // First contact raced by four processes: one pins, the others find its pin.
    let tofu = tempfile::tempdir().unwrap();
    let workers: Vec<String> = (0..WORKERS).map(|n| format!("tofu{n}")).collect();
    run_children(tofu.path(), &workers);
    let pin = PinStore::new(tofu.path())
        .read(SERVER)
        .unwrap()
        .pin
        .unwrap();
    let tools = pin["tools"].as_object().unwrap();
    assert_eq!(tools.len(), 3, "{pin}");
}

fn run_children(dir: &Path, workers: &[String]) {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = workers
        .iter()
        .map(|w| {
            Command::new(&exe)
                .args([&this_test(), "--exact", "--test-threads=1", "--quiet"])
                .env(CHILD_DIR, dir)
                .env(CHILD_WORKER, w)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
}

fn listing() -> Vec<Value> {
    ["a", "b", "c"]
        .iter()
        .map(|n| json!({"name": n, "description": format!("tool {n}")}))
        .collect()
}

/// A child that is one of several proxies starting at once on a server nobody pinned yet.
fn first_contact(store: &PinStore, worker: &str) {
    let b = Baseline::new(
        SERVER,
        Origin::Command {
            command: vec![worker.to_string()],
        },
        store.clone(),
        BaselineConfig::default(),
        no_scanner(),
    );
    let d = b.observe_tools(&listing(), UNIX_EPOCH + Duration::from_secs(1));
    assert_eq!(d.keep, vec![true; 3], "{worker}: {:?}", d.events);
    assert!(d.error.is_none());
}

#[test]
fn threads_racing_first_contact_pin_once() {
    let dir = tempfile::tempdir().unwrap();
    let handles: Vec<_> = (0..WORKERS)
        .map(|n| {
            let store = PinStore::new(dir.path());
            std::thread::spawn(move || {
                let b = Baseline::new(
                    SERVER,
                    Origin::Url {
                        url: format!("u{n}"),
                    },
                    store,
                    BaselineConfig::default(),
                    no_scanner(),
                );
                let d = b.observe_tools(&listing(), UNIX_EPOCH + Duration::from_secs(1));
                assert_eq!(d.keep, vec![true; 3]);
                d.events
                    .iter()
                    .filter(|e| matches!(e, PinEvent::FirstPin { .. }))
                    .count()
            })
        })
        .collect();
    let first_pins: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(first_pins, 1, "exactly one proxy pins on first use");
}
