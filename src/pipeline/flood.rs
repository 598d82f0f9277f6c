//! Step: a bound on what a server may push without being asked. Progress, log messages and
//! list/resource change notifications are free for a server to send and cost the client (and
//! the audit trail) per message, so a hostile or broken server could drown both. Per server and
//! per one-second window, the first `NOTIFICATIONS_PER_SECOND` pass untouched; past that:
//!
//! - progress keeps only its latest value per token, and a change notification its latest per
//!   method and URI (coalesced: delivered when the window ends, or before the next answer, since
//!   progress after the final answer means nothing);
//! - everything else (log messages) is dropped.
//!
//! Drops are counted and written as ONE audit record per window, not one per message: a record
//! per dropped message would be the very flood we are bounding.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

/// Server notifications that pass per server per second before coalescing starts. A busy
/// progress bar updates a few dozen times a second at most.
pub const NOTIFICATIONS_PER_SECOND: u32 = 200;
/// Distinct coalescing keys kept per window; beyond it, more are dropped.
const MAX_COALESCED: usize = 256;
const WINDOW: Duration = Duration::from_secs(1);

/// The audit event of a message that was coalesced or dropped: its record is not written (the
/// window's summary record counts it).
pub const SUPPRESSED: &str = "notification.suppressed";

/// What to do with one bounded notification.
#[derive(Debug, PartialEq, Eq)]
pub enum Flood {
    Pass,
    /// Kept as the latest for its key; delivered later.
    Coalesced,
    Dropped,
}

/// One server's notification window.
#[derive(Debug, Default)]
pub struct FloodWindow {
    start: Option<Instant>,
    count: u32,
    dropped: u64,
    coalesced: u64,
    /// Latest line per coalescing key, in first-seen order.
    latest: Vec<(String, Vec<u8>)>,
    index: HashMap<String, usize>,
}

/// The summary of a window that had to shed messages.
#[derive(Debug, PartialEq, Eq)]
pub struct WindowSummary {
    pub dropped: u64,
    pub coalesced: u64,
}

/// Whether `method` is one of the notifications the bound applies to.
pub fn bounded(method: &str) -> bool {
    matches!(
        method,
        "notifications/progress" | "notifications/message" | "notifications/resources/updated"
    ) || method.ends_with("/list_changed")
}

impl FloodWindow {
    /// Start a new window if the current one is over: returns the lines held back for delivery
    /// and the summary of the window that ended, if it shed anything.
    pub fn roll(&mut self, now: Instant) -> (Vec<Vec<u8>>, Option<WindowSummary>) {
        match self.start {
            Some(s) if now.duration_since(s) < WINDOW => (Vec::new(), None),
            _ => {
                self.start = Some(now);
                self.count = 0;
                self.end_window()
            }
        }
    }

    /// Everything held back, and the summary so far (an answer arrived, or the session ends).
    pub fn end_window(&mut self) -> (Vec<Vec<u8>>, Option<WindowSummary>) {
        let lines = std::mem::take(&mut self.latest)
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        self.index.clear();
        let summary = (self.dropped + self.coalesced > 0).then(|| WindowSummary {
            dropped: std::mem::take(&mut self.dropped),
            coalesced: std::mem::take(&mut self.coalesced),
        });
        (lines, summary)
    }

    /// Whether lines are held back for delivery.
    pub fn holding(&self) -> bool {
        !self.latest.is_empty()
    }

    /// Count one bounded notification (call `roll` first).
    pub fn admit(&mut self, method: &str, params: Option<&RawValue>, line: &[u8]) -> Flood {
        if self.count < NOTIFICATIONS_PER_SECOND {
            self.count += 1;
            return Flood::Pass;
        }
        let Some(key) = coalescing_key(method, params) else {
            self.dropped += 1;
            return Flood::Dropped;
        };
        if let Some(&i) = self.index.get(&key) {
            // The one it replaces is gone for good.
            self.latest[i].1 = line.to_vec();
            self.coalesced += 1;
            return Flood::Coalesced;
        }
        if self.latest.len() >= MAX_COALESCED {
            self.dropped += 1;
            return Flood::Dropped;
        }
        self.index.insert(key.clone(), self.latest.len());
        self.latest.push((key, line.to_vec()));
        self.coalesced += 1;
        Flood::Coalesced
    }
}

/// Progress by token; change notifications by method (and URI): the latest says it all.
fn coalescing_key(method: &str, params: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(rename = "progressToken", borrow, default)]
        token: Option<&'a RawValue>,
        #[serde(borrow, default)]
        uri: Option<std::borrow::Cow<'a, str>>,
    }
    let peek: Option<Peek> = params.and_then(|p| serde_json::from_str(p.get()).ok());
    match method {
        "notifications/progress" => Some(format!("p:{}", peek?.token?.get())),
        "notifications/resources/updated" => Some(format!("u:{}", peek?.uri?)),
        m if m.ends_with("/list_changed") => Some(format!("l:{m}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn a_flood_keeps_the_latest_progress_and_counts_the_rest() {
        let mut w = FloodWindow::default();
        let t0 = Instant::now();
        assert_eq!(w.roll(t0), (vec![], None));
        for _ in 0..NOTIFICATIONS_PER_SECOND {
            assert_eq!(
                w.admit("notifications/message", Some(&raw("{}")), b"log"),
                Flood::Pass
            );
        }
        assert_eq!(
            w.admit("notifications/message", Some(&raw("{}")), b"log"),
            Flood::Dropped
        );
        let p = raw(r#"{"progressToken":"t","progress":1}"#);
        assert_eq!(
            w.admit("notifications/progress", Some(&p), b"p1"),
            Flood::Coalesced
        );
        assert_eq!(
            w.admit("notifications/progress", Some(&p), b"p2"),
            Flood::Coalesced
        );
        assert!(w.holding());
        // Same window: nothing yet.
        assert_eq!(w.roll(t0 + Duration::from_millis(500)).0.len(), 0);
        let (lines, summary) = w.roll(t0 + WINDOW);
        assert_eq!(lines, vec![b"p2".to_vec()]);
        assert_eq!(
            summary,
            Some(WindowSummary {
                dropped: 1,
                coalesced: 2
            })
        );
        assert_eq!(
            w.admit("notifications/message", Some(&raw("{}")), b"log"),
            Flood::Pass
        );
    }
}
