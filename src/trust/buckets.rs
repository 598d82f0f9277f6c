//! The aggregated history of one server: counts per UTC day.
//!
//! Per-day buckets make the 30-day window exact to the day while the file stays bounded (at most
//! `WINDOW_DAYS` buckets plus `first_seen`), however much traffic a server gets. The same type is
//! the file's content and a recorder's unflushed batch, so flushing is a `merge`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::events::{Event, Observation, Severity, Vote};

/// Length of the sliding window, today included.
pub const WINDOW_DAYS: u64 = 30;
pub const SECS_PER_DAY: u64 = 86_400;
/// Format version of the persisted file.
pub const FORMAT_VERSION: u32 = 1;

/// UTC day number of a unix time.
pub fn day_of(unix: u64) -> u64 {
    unix / SECS_PER_DAY
}

/// One counter of a day bucket. Serialised in snake_case as the keys of the file's count maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    SigValid,
    SigInvalid,
    PinMatched,
    PinMismatch,
    StartOk,
    StartFailed,
    HandshakeOk,
    HandshakeFailed,
    UptimeSecs,
    CallsOk,
    CallsError,
    AlertsLow,
    AlertsMedium,
    AlertsHigh,
    AlertsCritical,
    Denied,
    Allowed,
    Drift,
    Sessions,
    FeedbackUp,
    FeedbackDown,
}

impl Counter {
    /// The counter an observation increments and by how much.
    pub fn tally(obs: &Observation) -> (Counter, u64) {
        use Observation as O;
        let c = match obs {
            O::SignatureValid => Counter::SigValid,
            O::SignatureInvalid => Counter::SigInvalid,
            O::AttestedPinMatched => Counter::PinMatched,
            O::AttestedPinMismatch => Counter::PinMismatch,
            O::UpstreamStart { ok: true } => Counter::StartOk,
            O::UpstreamStart { ok: false } => Counter::StartFailed,
            O::Handshake { ok: true } => Counter::HandshakeOk,
            O::Handshake { ok: false } => Counter::HandshakeFailed,
            O::Uptime { secs } => return (Counter::UptimeSecs, *secs),
            O::CallOk => Counter::CallsOk,
            O::CallError => Counter::CallsError,
            O::Alert { severity } => Counter::alert(*severity),
            O::CallDenied => Counter::Denied,
            O::CallAllowed => Counter::Allowed,
            O::Drift => Counter::Drift,
            O::Session => Counter::Sessions,
            O::Feedback(Vote::Up) => Counter::FeedbackUp,
            O::Feedback(Vote::Down) => Counter::FeedbackDown,
        };
        (c, 1)
    }

    pub fn alert(severity: Severity) -> Counter {
        match severity {
            Severity::Low => Counter::AlertsLow,
            Severity::Medium => Counter::AlertsMedium,
            Severity::High => Counter::AlertsHigh,
            Severity::Critical => Counter::AlertsCritical,
        }
    }
}

/// The counts of one day. Zero counters are absent, which keeps the file small.
pub type Counts = BTreeMap<Counter, u64>;

/// Everything kept about one server: the file `trust/<server>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default = "format_version")]
    pub v: u32,
    pub server: String,
    /// First time the proxy saw traffic of this server (kept beyond the window: it is the age).
    #[serde(default)]
    pub first_seen: Option<u64>,
    #[serde(default)]
    pub last_seen: Option<u64>,
    /// Day number → counts of that day.
    #[serde(default)]
    pub days: BTreeMap<u64, Counts>,
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

impl History {
    pub fn new(server: &str) -> Self {
        History {
            v: FORMAT_VERSION,
            server: server.to_string(),
            ..History::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first_seen.is_none() && self.days.is_empty()
    }

    /// Adds one event to its day bucket.
    pub fn apply(&mut self, event: &Event) {
        let (counter, n) = Counter::tally(&event.obs);
        if n > 0 {
            let slot = self.days.entry(day_of(event.at)).or_default();
            let v = slot.entry(counter).or_insert(0);
            *v = v.saturating_add(n);
        }
        if event.obs.is_traffic() {
            self.first_seen = Some(self.first_seen.map_or(event.at, |f| f.min(event.at)));
            self.last_seen = Some(self.last_seen.map_or(event.at, |l| l.max(event.at)));
        }
    }

    /// Adds another history (a recorder's batch) into this one: counts sum, seen-times widen.
    pub fn merge(&mut self, other: &History) {
        for (day, counts) in &other.days {
            let slot = self.days.entry(*day).or_default();
            for (counter, n) in counts {
                let v = slot.entry(*counter).or_insert(0);
                *v = v.saturating_add(*n);
            }
        }
        self.first_seen = min_opt(self.first_seen, other.first_seen);
        self.last_seen = match (self.last_seen, other.last_seen) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Drops buckets outside the window ending on `now`'s day. Buckets more than a day in the
    /// future are dropped too: they can only come from a clock that jumped, and would otherwise
    /// linger (and count) until the real date caught up.
    pub fn prune(&mut self, now: u64) {
        let today = day_of(now);
        self.days.retain(|day, counts| {
            !counts.is_empty() && *day + WINDOW_DAYS > today && *day <= today + 1
        });
    }

    /// `(age in days, counts)` of each bucket inside the window ending on `now`'s day, where the
    /// age is 0 for today. A bucket of tomorrow (clock skew between processes) counts as today.
    pub fn window(&self, now: u64) -> impl Iterator<Item = (u64, &Counts)> {
        let today = day_of(now);
        self.days
            .iter()
            .filter(move |(day, _)| **day + WINDOW_DAYS > today && **day <= today + 1)
            .map(move |(day, counts)| (today.saturating_sub(*day), counts))
    }

    /// Sum of one counter over the window.
    pub fn total(&self, counter: Counter, now: u64) -> u64 {
        self.window(now)
            .map(|(_, c)| c.get(&counter).copied().unwrap_or(0))
            .fold(0u64, u64::saturating_add)
    }

    /// Sum of one counter over the window with each day's count multiplied by `weight(age)`.
    pub fn weighted(&self, counter: Counter, now: u64, weight: impl Fn(u64) -> f64) -> f64 {
        self.window(now)
            .map(|(age, c)| c.get(&counter).copied().unwrap_or(0) as f64 * weight(age))
            .sum()
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_780_000_000;

    #[test]
    fn events_land_in_their_day_bucket() {
        let mut h = History::new("fs");
        h.apply(&Event::new(T0, Observation::CallOk));
        h.apply(&Event::new(T0 + 1, Observation::CallOk));
        h.apply(&Event::new(
            T0 + SECS_PER_DAY,
            Observation::Uptime { secs: 90 },
        ));
        assert_eq!(h.days.len(), 2);
        assert_eq!(h.days[&day_of(T0)][&Counter::CallsOk], 2);
        assert_eq!(h.total(Counter::UptimeSecs, T0 + SECS_PER_DAY), 90);
        assert_eq!(
            (h.first_seen, h.last_seen),
            (Some(T0), Some(T0 + SECS_PER_DAY))
        );
    }

    #[test]
    fn feedback_counts_but_does_not_mark_the_server_seen() {
        let mut h = History::new("fs");
        h.apply(&Event::new(T0, Observation::Feedback(Vote::Up)));
        assert_eq!(h.total(Counter::FeedbackUp, T0), 1);
        assert_eq!(h.first_seen, None);
    }

    #[test]
    fn merge_sums_counts_and_widens_seen_times() {
        let mut a = History::new("fs");
        a.apply(&Event::new(T0 + 10, Observation::CallOk));
        let mut b = History::new("fs");
        b.apply(&Event::new(T0, Observation::CallOk));
        b.apply(&Event::new(T0 + 20, Observation::Drift));
        a.merge(&b);
        assert_eq!(a.total(Counter::CallsOk, T0), 2);
        assert_eq!(a.total(Counter::Drift, T0), 1);
        assert_eq!((a.first_seen, a.last_seen), (Some(T0), Some(T0 + 20)));
    }

    #[test]
    fn window_is_exact_to_the_day_and_prune_bounds_the_file() {
        let mut h = History::new("fs");
        for d in 0..40 {
            h.apply(&Event::new(T0 + d * SECS_PER_DAY, Observation::CallOk));
        }
        let now = T0 + 39 * SECS_PER_DAY;
        assert_eq!(h.total(Counter::CallsOk, now), WINDOW_DAYS);
        h.prune(now);
        assert_eq!(h.days.len() as u64, WINDOW_DAYS);
        assert_eq!(h.first_seen, Some(T0), "age survives pruning");
        let ages: Vec<u64> = h.window(now).map(|(age, _)| age).collect();
        assert_eq!(ages.first(), Some(&(WINDOW_DAYS - 1)));
        assert_eq!(ages.last(), Some(&0));
    }

    #[test]
    fn far_future_buckets_are_pruned_near_future_counts_as_today() {
        let mut h = History::new("fs");
        h.apply(&Event::new(T0 + SECS_PER_DAY, Observation::CallOk));
        h.apply(&Event::new(T0 + 5 * SECS_PER_DAY, Observation::CallOk));
        assert_eq!(
            h.weighted(Counter::CallsOk, T0, |age| age as f64 + 1.0),
            1.0
        );
        h.prune(T0);
        assert_eq!(h.days.len(), 1);
    }

    #[test]
    fn file_form_round_trips_and_tolerates_missing_fields() {
        let mut h = History::new("fs");
        h.apply(&Event::new(
            T0,
            Observation::Alert {
                severity: Severity::High,
            },
        ));
        let text = serde_json::to_string(&h).unwrap_or_default();
        assert!(text.contains("\"alerts_high\":1"), "{text}");
        let back: History = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, h);
        let minimal: History = serde_json::from_str(r#"{"server":"x"}"#).unwrap_or_default();
        assert_eq!(minimal.v, FORMAT_VERSION);
        assert!(minimal.is_empty());
    }
}
