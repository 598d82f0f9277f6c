//! The collector presumed down after a failed export. While it is, the export thread counts
//! arriving lines as not exported instead of turning them into records nobody will receive:
//! a dead collector (connection refused at once) would otherwise cost the machine the full
//! conversion and encoding of every line, CPU the data path shares. The wait doubles from
//! `FIRST` up to `LONGEST`; the first batch after it is the probe.

use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_secs(1);
const LONGEST: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Backoff {
    until: Option<Instant>,
    next: Option<Duration>,
}

impl Backoff {
    /// Whether a line arriving at `now` is skipped (the collector is presumed down).
    pub fn skipping(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| now < t)
    }

    /// An export failed at `now`: wait before converting lines again.
    pub fn failed(&mut self, now: Instant) {
        let wait = self.next.unwrap_or(FIRST);
        self.until = Some(now + wait);
        self.next = Some((wait * 2).min(LONGEST));
    }

    /// An export went through: the collector is back.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_minute_and_a_success_ends_them() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(!b.skipping(t0));
        b.failed(t0);
        assert!(b.skipping(t0 + Duration::from_millis(999)));
        assert!(!b.skipping(t0 + FIRST));
        b.failed(t0);
        assert!(b.skipping(t0 + Duration::from_millis(1999)));
        assert!(!b.skipping(t0 + Duration::from_secs(2)));
        for _ in 0..10 {
            b.failed(t0);
        }
        assert!(b.skipping(t0 + Duration::from_secs(59)));
        assert!(!b.skipping(t0 + LONGEST));
        b.succeeded();
        assert!(!b.skipping(t0));
        b.failed(t0);
        assert!(!b.skipping(t0 + FIRST), "a success starts the waits over");
    }
}
