//! Behaviour of the whole module: factors move the right way as a server misbehaves, and the
//! window slides with the (injected) clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::buckets::SECS_PER_DAY;
use super::events::{Observation as O, Severity, Vote};
use super::recorder::{Clock, TrustRecorder};
use super::report::TrustReport;
use super::score::{NEW_SERVER_SCORE, WEIGHTS};
use super::store::TrustStore;

const T0: u64 = 1_780_000_000;

struct Rig {
    _dir: tempfile::TempDir,
    now: Arc<AtomicU64>,
    rec: TrustRecorder,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(T0));
        let c = Arc::clone(&now);
        let clock: Clock = Arc::new(move || c.load(Ordering::SeqCst));
        // cache 0: every read re-reads the file, so each step sees what was just flushed.
        let rec =
            TrustRecorder::new(TrustStore::new(dir.path()), "srv", clock).with_intervals(0, 0);
        Rig {
            _dir: dir,
            now,
            rec,
        }
    }

    fn feed(&self, obs: O, times: usize) {
        for _ in 0..times {
            self.rec.record(obs);
        }
        self.rec.flush().unwrap();
    }

    fn advance_days(&self, days: u64) {
        self.now.fetch_add(days * SECS_PER_DAY, Ordering::SeqCst);
    }

    fn report(&self) -> TrustReport {
        self.rec.report()
    }
}

fn value(r: &TrustReport, name: &str) -> Option<f64> {
    r.factors
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.value)
}

/// Asserts that `moved` went `up` (or down) from `before` to `after`, the total went the same way,
/// and every other factor kept its value.
fn step(before: &TrustReport, after: &TrustReport, moved: &str, up: bool) {
    let (b, a) = (value(before, moved), value(after, moved));
    let (b, a) = (
        b.unwrap_or(NEW_SERVER_SCORE),
        a.unwrap_or_else(|| panic!("{moved} has no data")),
    );
    assert!(if up { a > b } else { a < b }, "{moved}: {b} -> {a}");
    let (sb, sa) = (before.score, after.score);
    assert!(
        if up { sa > sb } else { sa < sb },
        "total after {moved}: {sb} -> {sa}"
    );
    for (name, _) in WEIGHTS.iter().filter(|(n, _)| *n != moved) {
        assert_eq!(
            value(before, name),
            value(after, name),
            "{name} should not move with {moved}"
        );
    }
}

/// The score is the weighted mean over the factors with data.
fn assert_renormalised(r: &TrustReport) {
    let (sum, w) = r
        .factors
        .iter()
        .filter_map(|f| f.value.map(|v| (v * f.weight, f.weight)))
        .fold((0.0, 0.0), |(s, t), (a, b)| (s + a, t + b));
    assert!(
        (r.score - sum / w).abs() < 1e-3,
        "{} vs {}",
        r.score,
        sum / w
    );
}

#[test]
fn every_factor_and_the_total_move_the_expected_way() {
    let rig = Rig::new();
    let fresh = rig.report();
    assert_eq!(fresh.score, NEW_SERVER_SCORE);
    assert!(fresh.factors.iter().all(|f| f.value.is_none()));

    // A healthy first session.
    rig.feed(O::UpstreamStart { ok: true }, 1);
    rig.feed(O::Handshake { ok: true }, 1);
    rig.feed(O::Session, 1);
    rig.feed(O::SignatureValid, 5);
    rig.feed(O::AttestedPinMatched, 1);
    rig.feed(O::CallAllowed, 10);
    rig.feed(O::CallOk, 10);
    let healthy = rig.report();
    assert_eq!(
        value(&healthy, "operator_feedback"),
        None,
        "no vote yet: null, not a guess"
    );
    assert_eq!(
        value(&healthy, "security_alerts"),
        Some(1.0),
        "quiet traffic is a measurement"
    );
    assert_eq!(value(&healthy, "drift"), Some(1.0));
    assert!(healthy
        .factors
        .iter()
        .filter(|f| f.name != "operator_feedback")
        .all(|f| f.value.is_some()));
    assert_renormalised(&healthy);
    assert!(healthy.score > NEW_SERVER_SCORE, "{healthy:?}");

    let mut last = healthy;
    let mut check = |obs: O, times: usize, moved: &str, up: bool| {
        rig.feed(obs, times);
        let now = rig.report();
        step(&last, &now, moved, up);
        assert_renormalised(&now);
        last = now;
    };
    check(O::UpstreamStart { ok: false }, 3, "availability", false);
    check(O::Handshake { ok: false }, 1, "availability", false);
    check(O::CallError, 5, "success", false);
    check(O::SignatureInvalid, 3, "verification", false);
    check(O::AttestedPinMismatch, 1, "verification", false);
    check(O::CallDenied, 5, "compliance", false);
    check(
        O::Alert {
            severity: Severity::Low,
        },
        1,
        "security_alerts",
        false,
    );
    check(
        O::Alert {
            severity: Severity::Critical,
        },
        1,
        "security_alerts",
        false,
    );
    check(O::Drift, 1, "drift", false);
    check(O::Feedback(Vote::Down), 1, "operator_feedback", false);
    check(O::Feedback(Vote::Up), 5, "operator_feedback", true);
    check(O::Session, 10, "age_history", true);
    check(O::Uptime { secs: 86_400 }, 1, "availability", true);
    check(O::CallOk, 50, "success", true);
    check(O::SignatureValid, 20, "verification", true);
    check(O::CallAllowed, 50, "compliance", true);

    // Two weeks later: alerts and drift have faded, age has grown; everything else is unchanged.
    let before = rig.report();
    rig.advance_days(14);
    let after = rig.report();
    for name in ["security_alerts", "drift", "age_history"] {
        assert!(
            value(&after, name) > value(&before, name),
            "{name} should recover with time"
        );
    }
    for name in [
        "verification",
        "availability",
        "success",
        "compliance",
        "operator_feedback",
    ] {
        assert_eq!(value(&after, name), value(&before, name), "{name}");
    }
    assert!(after.score > before.score);
}

#[test]
fn events_older_than_the_window_fall_out() {
    let rig = Rig::new();
    // Day 0: a disaster. Day 10: one good call.
    rig.feed(O::UpstreamStart { ok: false }, 5);
    rig.feed(O::CallError, 20);
    rig.feed(
        O::Alert {
            severity: Severity::Critical,
        },
        2,
    );
    rig.advance_days(10);
    rig.feed(O::CallOk, 1);
    let with_both = rig.report();
    assert!(with_both.score < NEW_SERVER_SCORE);

    // Day 29: still inside (30 days, today included).
    rig.advance_days(19);
    let r = rig.report();
    assert_eq!(r.factors[2].evidence["calls_error"], 20);
    assert!(value(&r, "availability").is_some());

    // Day 30: day 0 has left the window; only the day-10 call remains.
    rig.advance_days(1);
    let r = rig.report();
    assert_eq!(r.factors[2].evidence["calls_error"], 0);
    assert_eq!(r.factors[2].evidence["calls_ok"], 1);
    assert_eq!(value(&r, "availability"), None);
    assert_eq!(value(&r, "security_alerts"), Some(1.0));
    assert!(r.score > NEW_SERVER_SCORE);

    // Day 40: nothing left; a server not seen for a month is scored as new.
    rig.advance_days(10);
    let r = rig.report();
    assert!(r.factors.iter().all(|f| f.value.is_none()), "{r:?}");
    assert_eq!(r.score, NEW_SERVER_SCORE);

    // The file itself was pruned on the next write.
    rig.feed(O::Session, 1);
    let store = TrustStore::new(rig._dir.path());
    let h = store.load("srv").unwrap();
    assert_eq!(h.days.len(), 1);
    assert_eq!(
        h.first_seen,
        Some(T0),
        "age is remembered beyond the window"
    );
    let r = rig.report();
    assert_eq!(r.factors[5].evidence["age_days"], 40);
}
