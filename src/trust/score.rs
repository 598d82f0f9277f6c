//! The eight factors of SPEC §7 and their weighted mean.
//!
//! Every factor is a function of counts in the 30-day window; a factor whose counts are all zero
//! has no data, is reported as `null` and its weight is shared out among the others. Ratios are
//! Laplace-smoothed (one imaginary good and one imaginary bad observation) so that a single call
//! does not make a server perfect or worthless: each factor starts near 0.5 and moves with
//! evidence. Nothing here is a constant standing in for a measurement.

use serde_json::{Map, Value};

use super::buckets::{Counter, History, SECS_PER_DAY};
use super::report::{FactorReport, TrustReport};

/// Score of a server the proxy knows nothing about (SPEC §7: "a new server starts at 0.5").
pub const NEW_SERVER_SCORE: f64 = 0.5;

/// Factor names (SPEC §14) and weights (SPEC §7), in report order.
pub const WEIGHTS: [(&str, f64); 8] = [
    ("verification", 0.25),
    ("availability", 0.15),
    ("success", 0.15),
    ("security_alerts", 0.15),
    ("compliance", 0.10),
    ("age_history", 0.10),
    ("drift", 0.05),
    ("operator_feedback", 0.05),
];

/// An alert or drift event loses half its weight every week: recent trouble matters most, but a
/// critical alert still counts for something at the end of the window.
const HALF_LIFE_DAYS: f64 = 7.0;
/// Alert weight per severity: one recent critical alert alone takes the factor to 0.1.
const SEVERITY_WEIGHTS: [(Counter, f64); 4] = [
    (Counter::AlertsLow, 0.25),
    (Counter::AlertsMedium, 1.0),
    (Counter::AlertsHigh, 3.0),
    (Counter::AlertsCritical, 9.0),
];
/// An hour of uptime counts as one successful start: availability is about time up, not only
/// about how often the process came up.
const UPTIME_CREDIT_SECS: f64 = 3_600.0;
/// Age and history saturate: a month of acquaintance and fifty sessions is as known as it gets.
const AGE_SATURATION_DAYS: f64 = 30.0;
const SESSION_SATURATION: f64 = 50.0;
/// Reports carry four decimals: enough to see movement, and the gate compares what is shown.
const DECIMALS: f64 = 10_000.0;

/// The breakdown and total for `history` as of `now` (unix seconds).
pub fn compute(history: &History, now: u64) -> TrustReport {
    let w = Window { h: history, now };
    let factors = vec![
        verification(&w),
        availability(&w),
        success(&w),
        security_alerts(&w),
        compliance(&w),
        age_history(&w),
        drift(&w),
        operator_feedback(&w),
    ];
    let (sum, weights) = factors
        .iter()
        .filter_map(|f| f.value.map(|v| (v * f.weight, f.weight)))
        .fold((0.0, 0.0), |(s, w), (a, b)| (s + a, w + b));
    // Renormalise over the factors with data; with none at all the server is new.
    let score = if weights > 0.0 {
        sum / weights
    } else {
        NEW_SERVER_SCORE
    };
    let factors = factors
        .into_iter()
        .map(|f| FactorReport {
            value: f.value.map(round),
            ..f
        })
        .collect();
    TrustReport {
        server: history.server.clone(),
        score: round(score),
        factors,
    }
}

struct Window<'a> {
    h: &'a History,
    now: u64,
}

impl Window<'_> {
    fn n(&self, c: Counter) -> u64 {
        self.h.total(c, self.now)
    }
    fn recent(&self, c: Counter) -> f64 {
        self.h.weighted(c, self.now, recency)
    }
}

/// Weight of something `age_days` old.
fn recency(age_days: u64) -> f64 {
    0.5f64.powf(age_days as f64 / HALF_LIFE_DAYS)
}

/// Share of good observations with a uniform prior (Laplace's rule of succession).
fn laplace(good: f64, bad: f64) -> f64 {
    (good + 1.0) / (good + bad + 2.0)
}

fn round(x: f64) -> f64 {
    (x * DECIMALS).round() / DECIMALS
}

fn factor(name: &str, value: Option<f64>, evidence: Map<String, Value>) -> FactorReport {
    let weight = WEIGHTS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0.0, |(_, w)| *w);
    FactorReport {
        name: name.to_string(),
        value,
        weight,
        evidence,
    }
}

fn evidence<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `Some(value)` when any of `counts` is non-zero, otherwise no data.
fn when_observed(counts: &[u64], value: impl FnOnce() -> f64) -> Option<f64> {
    counts.iter().any(|n| *n > 0).then(value)
}

/// Valid signatures and attested pins matching live listings vs invalid ones and mismatches.
fn verification(w: &Window) -> FactorReport {
    let (valid, invalid) = (w.n(Counter::SigValid), w.n(Counter::SigInvalid));
    let (matched, mismatch) = (w.n(Counter::PinMatched), w.n(Counter::PinMismatch));
    let value = when_observed(&[valid, invalid, matched, mismatch], || {
        laplace((valid + matched) as f64, (invalid + mismatch) as f64)
    });
    let ev = evidence([
        ("signatures_valid", valid.into()),
        ("signatures_invalid", invalid.into()),
        ("pins_matched", matched.into()),
        ("pins_mismatched", mismatch.into()),
    ]);
    factor("verification", value, ev)
}

/// Starts and handshakes that succeed (plus uptime credit) vs those that fail.
fn availability(w: &Window) -> FactorReport {
    let (start_ok, start_failed) = (w.n(Counter::StartOk), w.n(Counter::StartFailed));
    let (hs_ok, hs_failed) = (w.n(Counter::HandshakeOk), w.n(Counter::HandshakeFailed));
    let uptime = w.n(Counter::UptimeSecs);
    let value = when_observed(&[start_ok, start_failed, hs_ok, hs_failed, uptime], || {
        let good = (start_ok + hs_ok) as f64 + uptime as f64 / UPTIME_CREDIT_SECS;
        laplace(good, (start_failed + hs_failed) as f64)
    });
    let ev = evidence([
        ("starts_ok", start_ok.into()),
        ("starts_failed", start_failed.into()),
        ("handshakes_ok", hs_ok.into()),
        ("handshakes_failed", hs_failed.into()),
        ("uptime_secs", uptime.into()),
    ]);
    factor("availability", value, ev)
}

/// Calls that returned a result vs calls that returned an error.
fn success(w: &Window) -> FactorReport {
    let (ok, err) = (w.n(Counter::CallsOk), w.n(Counter::CallsError));
    let value = when_observed(&[ok, err], || laplace(ok as f64, err as f64));
    let ev = evidence([("calls_ok", ok.into()), ("calls_error", err.into())]);
    factor("success", value, ev)
}

/// 1.0 without alerts, falling as `1 / (1 + Σ severity × recency)`. Quiet traffic is data: the
/// absence of alerts over observed calls and sessions is a measurement, so the factor is present
/// as soon as there was traffic; only a server never used has no value here.
fn security_alerts(w: &Window) -> FactorReport {
    let counts: Vec<u64> = SEVERITY_WEIGHTS.iter().map(|(c, _)| w.n(*c)).collect();
    let weighted: f64 = SEVERITY_WEIGHTS
        .iter()
        .map(|(c, sev)| sev * w.recent(*c))
        .sum();
    // Allowed calls become ok or error calls; the larger sum is how many calls there were.
    let calls = (w.n(Counter::CallsOk) + w.n(Counter::CallsError))
        .max(w.n(Counter::Allowed) + w.n(Counter::Denied));
    let sessions = w.n(Counter::Sessions);
    let mut observed = counts.clone();
    observed.extend([calls, sessions]);
    let value = when_observed(&observed, || 1.0 / (1.0 + weighted));
    let ev = evidence([
        ("low", counts[0].into()),
        ("medium", counts[1].into()),
        ("high", counts[2].into()),
        ("critical", counts[3].into()),
        ("calls", calls.into()),
        ("sessions", sessions.into()),
        ("weighted", round(weighted).into()),
    ]);
    factor("security_alerts", value, ev)
}

/// Share of calls the policy did not deny.
fn compliance(w: &Window) -> FactorReport {
    let (allowed, denied) = (w.n(Counter::Allowed), w.n(Counter::Denied));
    let value = when_observed(&[allowed, denied], || {
        laplace(allowed as f64, denied as f64)
    });
    let ev = evidence([("allowed", allowed.into()), ("denied", denied.into())]);
    factor("compliance", value, ev)
}

/// How long and how much the server has been seen: from 0.5 for a server met today to 1.0, a
/// quarter for age (days since first contact) and a quarter for sessions in the window, each
/// saturating. Being new lends no confidence but is no evidence of harm either, so a fresh
/// server is not scored below the neutral 0.5 it starts at. Present only while there is traffic in the window, so
/// a server that went quiet for a month is new again rather than living on its old age alone.
fn age_history(w: &Window) -> FactorReport {
    let traffic = w.h.window(w.now).any(|(_, c)| {
        c.iter()
            .any(|(k, n)| *n > 0 && !matches!(k, Counter::FeedbackUp | Counter::FeedbackDown))
    });
    let age_days =
        w.h.first_seen
            .map_or(0, |f| w.now.saturating_sub(f) / SECS_PER_DAY);
    let sessions = w.n(Counter::Sessions);
    let value = traffic.then(|| {
        0.5 + 0.25 * (age_days as f64 / AGE_SATURATION_DAYS).min(1.0)
            + 0.25 * (sessions as f64 / SESSION_SATURATION).min(1.0)
    });
    let ev = evidence([("age_days", age_days.into()), ("sessions", sessions.into())]);
    factor("age_history", value, ev)
}

/// `1 / (1 + Σ drift × recency)`. Sessions without drift are data: each session's listings were
/// compared with the pins.
fn drift(w: &Window) -> FactorReport {
    let (drifts, sessions) = (w.n(Counter::Drift), w.n(Counter::Sessions));
    let weighted = w.recent(Counter::Drift);
    let value = when_observed(&[drifts, sessions], || 1.0 / (1.0 + weighted));
    let ev = evidence([
        ("drift_events", drifts.into()),
        ("sessions", sessions.into()),
        ("weighted", round(weighted).into()),
    ]);
    factor("drift", value, ev)
}

/// Laplace-smoothed share of `+1` votes.
fn operator_feedback(w: &Window) -> FactorReport {
    let (up, down) = (w.n(Counter::FeedbackUp), w.n(Counter::FeedbackDown));
    let value = when_observed(&[up, down], || laplace(up as f64, down as f64));
    let ev = evidence([("up", up.into()), ("down", down.into())]);
    factor("operator_feedback", value, ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::events::{Event, Observation, Severity};

    const T0: u64 = 1_780_000_000;

    fn history(obs: &[Observation]) -> History {
        let mut h = History::new("srv");
        for o in obs {
            h.apply(&Event::new(T0, *o));
        }
        h
    }

    fn value(r: &TrustReport, name: &str) -> Option<f64> {
        r.factors
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value)
    }

    #[test]
    fn weights_sum_to_one_and_follow_spec_order() {
        let total: f64 = WEIGHTS.iter().map(|(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let r = compute(&History::new("srv"), T0);
        let names: Vec<&str> = r.factors.iter().map(|f| f.name.as_str()).collect();
        let spec: Vec<&str> = WEIGHTS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, spec);
    }

    #[test]
    fn no_data_at_all_is_a_new_server() {
        let r = compute(&History::new("srv"), T0);
        assert_eq!(r.score, NEW_SERVER_SCORE);
        assert!(r.factors.iter().all(|f| f.value.is_none()));
    }

    #[test]
    fn a_single_factor_carries_the_whole_score() {
        let r = compute(&history(&[Observation::CallOk, Observation::CallOk]), T0);
        // Two good calls: success 3/4; alerts 1.0 (quiet traffic); age 0.5 (seen today, no
        // session).
        assert_eq!(value(&r, "success"), Some(0.75));
        assert_eq!(value(&r, "security_alerts"), Some(1.0));
        assert_eq!(value(&r, "age_history"), Some(0.5));
        assert_eq!(value(&r, "compliance"), None);
        let expected = (0.15 * 0.75 + 0.15 * 1.0 + 0.10 * 0.5) / 0.40;
        assert!(
            (r.score - expected).abs() < 1e-4,
            "{} vs {expected}",
            r.score
        );
    }

    #[test]
    fn alerts_weigh_by_severity_and_fade_with_age() {
        let low = compute(
            &history(&[Observation::Alert {
                severity: Severity::Low,
            }]),
            T0,
        );
        let crit = compute(
            &history(&[Observation::Alert {
                severity: Severity::Critical,
            }]),
            T0,
        );
        let (l, c) = (
            value(&low, "security_alerts"),
            value(&crit, "security_alerts"),
        );
        assert_eq!(c, Some(0.1));
        assert!(l > c);
        let later = compute(
            &history(&[Observation::Alert {
                severity: Severity::Critical,
            }]),
            T0 + 14 * SECS_PER_DAY,
        );
        assert!(
            value(&later, "security_alerts") > c,
            "two half-lives later it weighs less"
        );
    }

    #[test]
    fn uptime_counts_toward_availability() {
        let flaky = compute(&history(&[Observation::UpstreamStart { ok: false }]), T0);
        let steady = compute(
            &history(&[
                Observation::UpstreamStart { ok: false },
                Observation::Uptime { secs: 36_000 },
            ]),
            T0,
        );
        assert!(value(&steady, "availability") > value(&flaky, "availability"));
    }

    #[test]
    fn pol_11_new_server_drifted_once_is_below_the_high_threshold() {
        let r = compute(
            &history(&[
                Observation::UpstreamStart { ok: true },
                Observation::Handshake { ok: true },
                Observation::Session,
                Observation::Drift,
                Observation::Alert {
                    severity: Severity::Medium,
                },
            ]),
            T0,
        );
        assert!(r.score < 0.7, "{r:?}");
    }
}
