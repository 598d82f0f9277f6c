//! Tests for `reload.rs`: swap, keep-old-on-error, in-flight isolation, watcher.

use std::sync::mpsc;
use std::time::Instant;

use super::*;
use crate::policy::file::Action;
use crate::policy::set::ServerRef;

const V1: &str = "[server]\nmatch=['x']\n[[tool]]\nname='export'\naction='allow'\n";
const V2: &str = "[server]\nmatch=['x']\n[[tool]]\nname='export'\naction='deny'\n";
const V3_BAD: &str =
    "[server]\nmatch=['x']\n[[tool]]\nname='export'\n[tool.args.q]\npattern='(unclosed'\n";

fn export_action(set: &PolicySet) -> Action {
    set.resolve(
        &ServerRef {
            name: "x",
            argv: &[],
        },
        "export",
        None,
    )
    .action
}

/// OPS-01: v1 → v2 applies; malformed v3 is refused with path and line and
/// v2 stays; a request that started under v1 keeps v1.
#[test]
fn ops01_swap_then_reject() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, V1).unwrap();
    let h = PolicyHandle::load(dir.path()).unwrap();
    let in_flight = h.current();
    let v1 = h.version();

    std::fs::write(&file, V2).unwrap();
    let out = h.reload().unwrap();
    let v2 = h.version();
    assert_eq!(
        out,
        ReloadOutcome::Applied {
            old: v1.clone(),
            new: v2.clone()
        }
    );
    assert_eq!(export_action(&h.current()), Action::Deny);
    assert_eq!(
        export_action(&in_flight),
        Action::Allow,
        "in-flight keeps v1"
    );
    assert_eq!(in_flight.version(), v1);

    std::fs::write(&file, V3_BAD).unwrap();
    let e = h.reload().unwrap_err();
    assert_eq!(e.file, file);
    assert_eq!(e.line, Some(5));
    assert!(e.reason.contains("invalid pattern"), "{e}");
    assert_eq!(h.version(), v2, "v2 stays active");
    assert_eq!(export_action(&h.current()), Action::Deny);

    std::fs::write(&file, V2).unwrap();
    assert_eq!(
        h.reload().unwrap(),
        ReloadOutcome::Unchanged { version: v2 }
    );
}

#[test]
fn missing_directory_keeps_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let h = PolicyHandle::with_set(&dir.path().join("nope"), PolicySet::empty());
    assert!(h.reload().is_err());
    assert_eq!(h.version(), PolicySet::empty().version());
    assert_eq!(h.dir(), dir.path().join("nope"));
}

/// Write via a dot-file and rename, as an operator's deploy should: the
/// watcher never sees a half-written file.
fn put(path: &std::path::Path, text: &str) {
    let tmp = path.with_file_name(".incoming.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn wait_for(
    rx: &mpsc::Receiver<Result<ReloadOutcome, PolicyError>>,
) -> Result<ReloadOutcome, PolicyError> {
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

#[test]
fn watcher_applies_rejects_once_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, V1).unwrap();
    let h = Arc::new(PolicyHandle::load(dir.path()).unwrap());
    let (tx, rx) = mpsc::channel();
    let flag = Arc::new(AtomicBool::new(false));
    let watcher = h
        .watch(
            Duration::from_millis(20),
            Some(Arc::clone(&flag)),
            move |r| {
                let _ = tx.send(r.clone());
            },
        )
        .unwrap();

    put(&file, V2);
    assert!(matches!(wait_for(&rx), Ok(ReloadOutcome::Applied { .. })));
    assert_eq!(export_action(&h.current()), Action::Deny);

    put(&file, V3_BAD);
    assert!(wait_for(&rx).is_err());
    // Reported once: several quiet ticks produce nothing more.
    assert!(rx.recv_timeout(Duration::from_millis(150)).is_err());
    assert_eq!(export_action(&h.current()), Action::Deny);

    // SIGHUP forces a reload even with nothing changed.
    put(&file, V2);
    flag.store(true, Ordering::SeqCst);
    let r = wait_for(&rx);
    assert!(matches!(r, Ok(ReloadOutcome::Unchanged { .. })), "{r:?}");

    let t = Instant::now();
    drop(watcher);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop stops the thread promptly"
    );
}

#[test]
fn fingerprint_matches_version() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), V1).unwrap();
    let set = PolicySet::load_dir(dir.path()).unwrap();
    assert_eq!(fingerprint(dir.path()), set.version());
    assert!(fingerprint(&dir.path().join("missing")).starts_with("error:"));
}

#[test]
fn sighup_flag_registers() {
    let flag = register_sighup().unwrap();
    // Raising SIGHUP in-process sets only the flag (the handler replaces the
    // default action, which would terminate the test binary).
    // SAFETY: raise() has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGHUP) };
    let t = Instant::now();
    while !flag.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(flag.load(Ordering::SeqCst));
}
