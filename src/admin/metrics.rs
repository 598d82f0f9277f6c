//! The metrics registry the transports feed (SPEC §9): message counts by direction, method and
//! decision, the decision and upstream latency histograms, alerts, and the recent alert records
//! `/api/v1/alerts` serves. Counting is lock-free on the hot path once a label set exists.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::audit::{Decision, Direction, Record};

/// Bucket upper bounds (seconds) of the decision latency: the checks take microseconds.
pub const DECISION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];
/// Bucket upper bounds (seconds) of the upstream latency: tools take milliseconds to minutes.
pub const UPSTREAM_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Alert records kept for `/api/v1/alerts`.
pub const RECENT_ALERTS: usize = 100;
/// Label sets kept at most: a client inventing method names must not grow memory.
const MAX_SERIES: usize = 2_000;

/// Methods named as themselves in labels; anything else counts as `other` (bounded cardinality).
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/tools/list_changed",
    "notifications/resources/list_changed",
    "notifications/resources/updated",
    "notifications/prompts/list_changed",
    "notifications/roots/list_changed",
];

pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus the `+Inf` bucket; not cumulative (rendering sums them).
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe_us(&self, us: u64) {
        let secs = us as f64 / 1e6;
        let slot = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// `(upper bound, cumulative count)` per bucket (`None` = `+Inf`), the sum in seconds, count.
    pub fn snapshot(&self) -> (Vec<(Option<f64>, u64)>, f64, u64) {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            out.push((self.bounds.get(i).copied(), total));
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (out, sum, total)
    }
}

/// `(direction, method, decision)`.
pub type SeriesKey = (&'static str, String, &'static str);

/// Outcomes of sampling requests routed to the inference backend (the records' events).
pub const INFERENCE_OUTCOMES: &[&str] = &[
    "completed",
    "timeout",
    "backend_failed",
    "bad_request",
    "cancelled",
];

pub struct Metrics {
    messages: RwLock<HashMap<SeriesKey, AtomicU64>>,
    pub decision_latency: Histogram,
    pub upstream_latency: Histogram,
    /// Routed sampling: time the backend took, requests by outcome, tokens (prompt, completion).
    pub inference_latency: Histogram,
    inference_outcomes: Vec<AtomicU64>,
    inference_tokens: [AtomicU64; 2],
    alerts: AtomicU64,
    recent: Mutex<VecDeque<Value>>,
    /// Approval outcomes by (channel, outcome), from the records' `detail.approval`.
    approvals: Mutex<std::collections::BTreeMap<(String, String), u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::ClientToServer => "client_to_server",
        Direction::ServerToClient => "server_to_client",
        Direction::Proxy => "proxy",
    }
}

fn decision_label(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::Hold => "hold",
        Decision::Redact => "redact",
        Decision::Rewrite => "rewrite",
        Decision::Error => "error",
    }
}

pub(crate) fn method_label(method: Option<&str>) -> String {
    match method {
        None => "none".into(),
        Some(m) if KNOWN_METHODS.contains(&m) => m.to_owned(),
        Some(_) => "other".into(),
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            messages: RwLock::new(HashMap::new()),
            decision_latency: Histogram::new(DECISION_BUCKETS),
            upstream_latency: Histogram::new(UPSTREAM_BUCKETS),
            inference_latency: Histogram::new(UPSTREAM_BUCKETS),
            inference_outcomes: INFERENCE_OUTCOMES
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            inference_tokens: [AtomicU64::new(0), AtomicU64::new(0)],
            alerts: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_ALERTS)),
            approvals: Mutex::new(Default::default()),
        }
    }

    /// Counts one audit record. Call it right after the record is written (`Pipeline::finish`).
    pub fn record(&self, rec: &Record) {
        if rec.event == "checkpoint" {
            return;
        }
        let key = (
            direction_label(rec.direction),
            method_label(rec.method.as_deref()),
            decision_label(rec.decision),
        );
        self.count(key);
        let routed = rec
            .event
            .strip_prefix("inference.")
            .and_then(|o| INFERENCE_OUTCOMES.iter().position(|k| *k == o));
        if let Some(i) = routed {
            // Its latency is the backend's, not a decision's.
            self.inference_outcomes[i].fetch_add(1, Ordering::Relaxed);
            if let Some(us) = rec.latency_us {
                self.inference_latency.observe_us(us);
            }
            let usage = rec.detail.as_ref().and_then(|d| d.get("inference"));
            for (slot, key) in ["prompt_tokens", "completion_tokens"].iter().enumerate() {
                if let Some(n) = usage.and_then(|u| u.get(*key)).and_then(Value::as_u64) {
                    self.inference_tokens[slot].fetch_add(n, Ordering::Relaxed);
                }
            }
        } else if let Some(us) = rec.latency_us {
            self.decision_latency.observe_us(us);
        }
        if let Some(a) = rec.detail.as_ref().and_then(|d| d.get("approval")) {
            // Bounded: channels and outcomes are a handful of fixed words.
            let label = |k: &str| {
                a.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned()
            };
            *self
                .approvals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((label("channel"), label("outcome")))
                .or_default() += 1;
        }
        if rec.alert {
            self.alerts.fetch_add(1, Ordering::Relaxed);
            if let Ok(v) = serde_json::to_value(rec) {
                let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
                if recent.len() == RECENT_ALERTS {
                    recent.pop_front();
                }
                recent.push_back(v);
            }
        }
    }

    fn count(&self, key: SeriesKey) {
        {
            let map = self.messages.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = map.get(&key) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.messages.write().unwrap_or_else(|p| p.into_inner());
        let key = if map.len() >= MAX_SERIES && !map.contains_key(&key) {
            (key.0, "other".to_owned(), key.2)
        } else {
            key
        };
        map.entry(key)
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// How long the upstream took to answer one request.
    pub fn observe_upstream(&self, took: Duration) {
        self.upstream_latency
            .observe_us(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    /// Routed sampling requests per outcome, in `INFERENCE_OUTCOMES` order.
    pub fn inference_outcomes(&self) -> Vec<(&'static str, u64)> {
        INFERENCE_OUTCOMES
            .iter()
            .zip(&self.inference_outcomes)
            .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
            .collect()
    }

    /// Tokens the backend reported: (prompt, completion).
    pub fn inference_tokens(&self) -> (u64, u64) {
        (
            self.inference_tokens[0].load(Ordering::Relaxed),
            self.inference_tokens[1].load(Ordering::Relaxed),
        )
    }

    /// Approval outcomes counted so far: ((channel, outcome), count), sorted.
    pub fn approvals(&self) -> Vec<((String, String), u64)> {
        let map = self.approvals.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn alerts_total(&self) -> u64 {
        self.alerts.load(Ordering::Relaxed)
    }

    /// Message counts, sorted by labels (stable output).
    pub fn messages(&self) -> Vec<(SeriesKey, u64)> {
        let map = self.messages.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = map
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect();
        out.sort();
        out
    }

    /// The most recent alert records, oldest first.
    pub fn recent_alerts(&self) -> Vec<Value> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_outcomes_are_counted_by_channel() {
        let m = Metrics::new();
        let mut r = Record::new("s", "fs", Direction::ClientToServer, 10);
        m.record(&r);
        assert!(m.approvals().is_empty());
        r.detail = Some(
            serde_json::json!({"approval": {"channel": "client_elicitation", "outcome": "declined"}}),
        );
        m.record(&r);
        m.record(&r);
        assert_eq!(
            m.approvals(),
            vec![(("client_elicitation".into(), "declined".into()), 2)]
        );
    }

    #[test]
    fn records_count_and_bound_labels() {
        let m = Metrics::new();
        let mut r = Record::new("s", "fs", Direction::ClientToServer, 10);
        r.method = Some("tools/call".into());
        r.decision = Decision::Deny;
        r.latency_us = Some(120);
        r.alert = true;
        m.record(&r);
        r.method = Some("x/invented".into());
        r.alert = false;
        m.record(&r);
        let msgs = m.messages();
        assert_eq!(msgs.len(), 2);
        assert!(msgs.contains(&(("client_to_server", "other".into(), "deny"), 1)));
        assert_eq!(m.alerts_total(), 1);
        assert_eq!(m.recent_alerts().len(), 1);
        let (buckets, sum, count) = m.decision_latency.snapshot();
        assert_eq!(count, 2);
        assert!((sum - 0.00024).abs() < 1e-9);
        assert_eq!(buckets[0].1, 0);
        assert_eq!(buckets[2], (Some(0.000_25), 2));
        assert_eq!(buckets.last(), Some(&(None, 2)));
    }

    #[test]
    fn routed_sampling_counts_outcomes_tokens_and_backend_time() {
        let m = Metrics::new();
        let mut r = Record::new("s", "srv", Direction::ServerToClient, 10);
        r.method = Some("sampling/createMessage".into());
        r.event = "inference.completed".into();
        r.decision = Decision::Allow;
        r.latency_us = Some(1_500_000);
        r.detail =
            Some(serde_json::json!({"inference": {"prompt_tokens": 36, "completion_tokens": 19}}));
        m.record(&r);
        r.event = "inference.timeout".into();
        r.detail = None;
        m.record(&r);
        assert_eq!(m.inference_tokens(), (36, 19));
        assert!(m.inference_outcomes().contains(&("completed", 1)));
        assert!(m.inference_outcomes().contains(&("timeout", 1)));
        assert_eq!(m.inference_latency.snapshot().2, 2);
        assert_eq!(
            m.decision_latency.snapshot().2,
            0,
            "backend time is not decision time"
        );
    }
}
