//! Per-(client identity, server, tool) rate limiting: GCRA, bounded memory.
//!
//! GCRA (the generic cell rate algorithm, as in Linkerd's local rate limit)
//! keeps one number per key — the theoretical arrival time `tat` — instead
//! of a token count and a refill timestamp. For a rate of `count` per `per`:
//! the emission interval is `T = per / count`, the burst tolerance
//! `tau = T * (count - 1)` (so `count` calls may arrive at once). A call at
//! `now` is allowed when `tat - now <= tau`; it then sets
//! `tat = max(tat, now) + T`. Refused calls do not move `tat`, so a flood
//! cannot push the retry time further out. Exact integer nanoseconds.
//!
//! A reload that changes a rate keeps the key's state; a loosened rate takes
//! effect within one new interval (see the clamp in `check`).
//!
//! Memory is bounded by `max_keys`. A key whose `tat <= now` is fully
//! recovered and indistinguishable from an absent one, so it is dropped for
//! free. Only if the table is still full is the key closest to recovery
//! (smallest `tat`) evicted; that gives one key an early fresh burst, which
//! is the least harm possible without refusing unrelated new clients.
//!
//! The time source is injectable (`Clock`): tests drive a `ManualClock`.
//! `crate::sig::clock::Clock` is not reused: it has one-second resolution.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::policy::file::Rate;

/// Monotonic time since some fixed epoch.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// `Instant`-based clock, epoch = creation.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock(Instant);

impl MonotonicClock {
    pub fn new() -> Self {
        MonotonicClock(Instant::now())
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock tests move by hand (nanoseconds).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(nanos(d), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Ok,
    /// Refused; a call after `retry_after_ms` would be allowed (rounded up,
    /// never 0).
    Limited {
        retry_after_ms: u64,
    },
}

/// Default key cap: ample for real clients × servers × tools, ~100 bytes each.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

type Key = (String, String, String);

pub struct RateLimiter<C: Clock = MonotonicClock> {
    clock: C,
    max_keys: usize,
    /// Key → theoretical arrival time, in clock nanoseconds.
    tats: Mutex<HashMap<Key, u64>>,
}

impl RateLimiter<MonotonicClock> {
    pub fn new() -> Self {
        RateLimiter::with_clock(MonotonicClock::new(), DEFAULT_MAX_KEYS)
    }
}

impl Default for RateLimiter<MonotonicClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> RateLimiter<C> {
    pub fn with_clock(clock: C, max_keys: usize) -> Self {
        RateLimiter {
            clock,
            max_keys: max_keys.max(1),
            tats: Mutex::new(HashMap::new()),
        }
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Number of tracked keys (for metrics and tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Count one call by `client` to `server`'s `tool` against `rate`.
    /// A policy reload that changes the rate applies to the existing state.
    pub fn check(&self, client: &str, server: &str, tool: &str, rate: Rate) -> RateDecision {
        let now = nanos(self.clock.now());
        let interval = nanos(rate.per) / u64::from(rate.count.max(1));
        let tau = interval.saturating_mul(u64::from(rate.count.max(1)) - 1);
        let mut map = self.lock();
        let key = (client.to_string(), server.to_string(), tool.to_string());
        // Under one rate, tat never exceeds now + tau + T; more means the
        // rate was loosened by a reload, and the clamp applies it at once.
        let cap = now.saturating_add(tau).saturating_add(interval);
        let stored = map.get(&key).copied();
        let tat = stored.unwrap_or(now).max(now).min(cap);
        if stored.is_some_and(|t| t > cap) {
            map.insert(key.clone(), tat);
        }
        if tat - now > tau {
            let wait = tat - now - tau;
            return RateDecision::Limited {
                retry_after_ms: wait.div_ceil(1_000_000).max(1),
            };
        }
        let next = tat.saturating_add(interval);
        if !map.contains_key(&key) && map.len() >= self.max_keys {
            evict(&mut map, now);
        }
        map.insert(key, next);
        RateDecision::Ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, u64>> {
        // The map holds plain numbers; a panic elsewhere cannot corrupt it.
        self.tats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Make room for one key: drop every recovered key, else the one nearest
/// recovery.
fn evict(map: &mut HashMap<Key, u64>, now: u64) {
    let before = map.len();
    map.retain(|_, tat| *tat > now);
    if map.len() < before {
        return;
    }
    if let Some(k) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
        map.remove(&k);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Rate {
        Rate::parse(s).unwrap()
    }

    fn limiter(max: usize) -> RateLimiter<ManualClock> {
        RateLimiter::with_clock(ManualClock::default(), max)
    }

    #[test]
    fn burst_then_steady_rate() {
        let l = limiter(10);
        let r = rate("5/s");
        for _ in 0..5 {
            assert_eq!(l.check("c", "s", "t", r), RateDecision::Ok);
        }
        assert_eq!(
            l.check("c", "s", "t", r),
            RateDecision::Limited {
                retry_after_ms: 200
            }
        );
        l.clock().advance(Duration::from_millis(199));
        assert_eq!(
            l.check("c", "s", "t", r),
            RateDecision::Limited { retry_after_ms: 1 }
        );
        l.clock().advance(Duration::from_millis(1));
        assert_eq!(l.check("c", "s", "t", r), RateDecision::Ok);
        assert!(matches!(
            l.check("c", "s", "t", r),
            RateDecision::Limited { .. }
        ));
        // A full period of silence restores the whole burst.
        l.clock().advance(Duration::from_secs(1));
        for _ in 0..5 {
            assert_eq!(l.check("c", "s", "t", r), RateDecision::Ok);
        }
    }

    #[test]
    fn keys_are_independent() {
        let l = limiter(10);
        let r = rate("1/min");
        assert_eq!(l.check("a", "s", "t", r), RateDecision::Ok);
        assert!(matches!(
            l.check("a", "s", "t", r),
            RateDecision::Limited { .. }
        ));
        assert_eq!(l.check("b", "s", "t", r), RateDecision::Ok);
        assert_eq!(l.check("a", "s", "u", r), RateDecision::Ok);
        assert_eq!(l.check("a", "s2", "t", r), RateDecision::Ok);
    }

    /// RL-01: client-1 floods at 500 req/s for 10 s against 10/min; client-2
    /// calls once a second. client-1 gets its burst of 10 plus one call per
    /// 6 s; client-2 is never affected.
    #[test]
    fn rl01_flood_against_ten_per_minute() {
        let l = limiter(100);
        let r = rate("10/min");
        let (mut ok1, mut limited1, mut ok2) = (0, 0, 0);
        let mut max_retry = 0;
        for ms in (0..10_000u64).step_by(2) {
            match l.check("client-1", "srv", "search", r) {
                RateDecision::Ok => ok1 += 1,
                RateDecision::Limited { retry_after_ms } => {
                    limited1 += 1;
                    assert!((1..=6_000).contains(&retry_after_ms), "{retry_after_ms}");
                    max_retry = max_retry.max(retry_after_ms);
                }
            }
            if ms % 1000 == 0 && l.check("client-2", "srv", "search", r) == RateDecision::Ok {
                ok2 += 1;
            }
            l.clock().advance(Duration::from_millis(2));
        }
        // Burst of 10 at t=0, then one at 6 s.
        assert_eq!(ok1, 11);
        assert_eq!(limited1, 5_000 - 11);
        // Longest wait: right after the 6 s call (tat 66 s, tau 54 s).
        assert_eq!(max_retry, 5_998);
        assert_eq!(ok2, 10, "the control client keeps its full rate");
    }

    #[test]
    fn memory_is_bounded() {
        let l = limiter(3);
        let r = rate("1/s");
        for c in ["a", "b", "c"] {
            assert_eq!(l.check(c, "s", "t", r), RateDecision::Ok);
            l.clock().advance(Duration::from_millis(1));
        }
        // Full and nobody recovered: the key nearest recovery ("a") goes.
        assert_eq!(l.check("d", "s", "t", r), RateDecision::Ok);
        assert_eq!(l.len(), 3);
        assert_eq!(l.check("a", "s", "t", r), RateDecision::Ok, "a was evicted");
        // After a full period everyone has recovered: all are swept at once.
        l.clock().advance(Duration::from_secs(2));
        assert_eq!(l.check("e", "s", "t", r), RateDecision::Ok);
        assert_eq!(l.len(), 1);
        assert!(!l.is_empty());
    }

    #[test]
    fn rate_change_applies_to_existing_state() {
        let l = limiter(10);
        assert_eq!(l.check("c", "s", "t", rate("1/hour")), RateDecision::Ok);
        assert!(matches!(
            l.check("c", "s", "t", rate("1/hour")),
            RateDecision::Limited { retry_after_ms } if retry_after_ms == 3_600_000
        ));
        // Loosened to 100/s: the hour-long debt is clamped to one new burst
        // window, so the new rate applies within one interval.
        assert_eq!(
            l.check("c", "s", "t", rate("100/s")),
            RateDecision::Limited { retry_after_ms: 10 }
        );
        l.clock().advance(Duration::from_millis(10));
        assert_eq!(l.check("c", "s", "t", rate("100/s")), RateDecision::Ok);
        assert!(MonotonicClock::new().now() < Duration::from_secs(5));
        assert!(RateLimiter::default().is_empty());
    }
}
