//! Per-(client identity, server, tool) rate limiting: GCRA through the `governor` crate,
//! bounded memory, optionally enforced cluster-wide (`[cluster]`, issue 14).
//!
//! GCRA (the generic cell rate algorithm, as in Linkerd's local rate limit)
//! keeps one number per key — the theoretical arrival time `tat` — instead
//! of a token count and a refill timestamp. For a rate of `count` per `per`:
//! the emission interval is `T = per / count`, the burst tolerance
//! `tau = T * (count - 1)` (so `count` calls may arrive at once). A call at
//! `now` is allowed when `tat - now <= tau`; it then sets
//! `tat = max(tat, now) + T`. Refused calls do not move `tat`, so a flood
//! cannot push the retry time further out. `governor` does exactly this
//! (`Quota::with_period(T).allow_burst(count)`); what it does not have is
//! one key's state shared by several rates, so the state lives here in
//! [`TatStore`] (governor's `StateStore` seam) and every rate's limiter
//! reads and writes the same `tat`s, in the clock's own nanoseconds.
//!
//! A reload that changes a rate keeps the key's state; a loosened rate takes
//! effect within one new interval (the clamp in `TatStore`).
//!
//! Memory is bounded by `max_keys`. A key whose `tat <= now` is fully
//! recovered and indistinguishable from an absent one, so it is dropped for
//! free. Only if the table is still full is the key closest to recovery
//! (smallest `tat`) evicted; that gives one key an early fresh burst, which
//! is the least harm possible without refusing unrelated new clients.
//!
//! The time source is injectable (`Clock`, handed to governor through its
//! `Clock` trait): tests drive a `ManualClock`.
//! `crate::sig::clock::Clock` is not reused: it has one-second resolution.
//!
//! With `[cluster]` the local limiter is a pre-filter: a call it refuses
//! never costs a Redis round trip; one it allows is then counted by the
//! cluster-wide GCRA ([`SharedRates`], `cluster/rates.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use governor::nanos::Nanos;
use governor::Quota;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateDecision {
    Ok,
    /// Refused; a call after `retry_after_ms` would be allowed (rounded up,
    /// never 0).
    Limited {
        retry_after_ms: u64,
    },
    /// The cluster-wide count could not be taken (Redis down) and the
    /// cluster fails closed (`signatures.mode = "enforce"`).
    Unavailable {
        retry_after_ms: u64,
        reason: String,
    },
}

/// The cluster-wide count behind the local pre-filter (`cluster/rates.rs`).
pub trait SharedRates: Send + Sync {
    /// Count one call of `key` against `rate` across every replica. In
    /// audit mode an unreachable store answers `Ok` (and raises its alert).
    fn check(&self, client: &str, server: &str, tool: &str, rate: Rate) -> RateDecision;
}

/// Default key cap: ample for real clients × servers × tools, ~100 bytes each.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

type Key = (String, String, String);

/// governor's limiter over our state and our clock.
type Governor<C> = governor::RateLimiter<
    Key,
    TatStore<C>,
    GovClock<C>,
    governor::middleware::NoOpMiddleware<Nanos>,
>;

pub struct RateLimiter<C: Clock = MonotonicClock> {
    clock: Arc<C>,
    max_keys: usize,
    /// Key → theoretical arrival time, in clock nanoseconds. Shared by every
    /// rate's limiter; a concurrent map so unrelated keys never wait on one lock.
    tats: Arc<DashMap<Key, u64>>,
    /// One governor limiter per distinct rate in the policy.
    by_rate: DashMap<(u32, Duration), Arc<Governor<C>>>,
    shared: Option<Arc<dyn SharedRates>>,
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

impl<C: Clock + 'static> RateLimiter<C> {
    pub fn with_clock(clock: C, max_keys: usize) -> Self {
        RateLimiter {
            clock: Arc::new(clock),
            max_keys: max_keys.max(1),
            tats: Arc::new(DashMap::new()),
            by_rate: DashMap::new(),
            shared: None,
        }
    }

    /// Count allowed calls cluster-wide too (the local limiter stays in front).
    /// Whether an allowed call is also counted cluster-wide (a Redis round trip: blocking).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn with_shared(mut self, shared: Arc<dyn SharedRates>) -> Self {
        self.shared = Some(shared);
        self
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Number of tracked keys (for metrics and tests).
    pub fn len(&self) -> usize {
        self.tats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Count one call by `client` to `server`'s `tool` against `rate`.
    /// A policy reload that changes the rate applies to the existing state.
    pub fn check(&self, client: &str, server: &str, tool: &str, rate: Rate) -> RateDecision {
        let local = self.check_local(client, server, tool, rate);
        match (&local, &self.shared) {
            (RateDecision::Ok, Some(shared)) => shared.check(client, server, tool, rate),
            _ => local,
        }
    }

    fn check_local(&self, client: &str, server: &str, tool: &str, rate: Rate) -> RateDecision {
        let limiter = self.limiter_for(rate);
        let key = (client.to_string(), server.to_string(), tool.to_string());
        match limiter.check_key(&key) {
            Ok(()) => RateDecision::Ok,
            Err(not_until) => {
                let now = Nanos::from(nanos(self.clock.now()));
                let wait = nanos(not_until.wait_time_from(now));
                RateDecision::Limited {
                    retry_after_ms: wait.div_ceil(1_000_000).max(1),
                }
            }
        }
    }

    fn limiter_for(&self, rate: Rate) -> Arc<Governor<C>> {
        let count = rate.count.max(1);
        if let Some(l) = self.by_rate.get(&(count, rate.per)) {
            return l.clone();
        }
        let interval = nanos(rate.per) / u64::from(count);
        let tau = interval.saturating_mul(u64::from(count) - 1);
        let start = Arc::new(OnceLock::new());
        let store = TatStore {
            tats: self.tats.clone(),
            clock: self.clock.clone(),
            start: start.clone(),
            interval,
            tau,
            max_keys: self.max_keys,
        };
        let clock = GovClock {
            clock: self.clock.clone(),
            start,
        };
        // NonZeroU32 from a count that is at least 1.
        let burst = std::num::NonZeroU32::new(count).unwrap_or(std::num::NonZeroU32::MIN);
        let quota = Quota::with_period(Duration::from_nanos(interval.max(1)))
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        let limiter = Arc::new(governor::RateLimiter::new(quota, store, clock));
        self.by_rate
            .entry((count, rate.per))
            .or_insert(limiter)
            .clone()
    }
}

/// Our clock seen by governor, in nanoseconds. Its first reading (taken by
/// `governor::RateLimiter::new`) is the limiter's start, which governor
/// subtracts from every time it hands the store: `start` lets the store
/// convert back to the shared clock's nanoseconds.
struct GovClock<C> {
    clock: Arc<C>,
    start: Arc<OnceLock<u64>>,
}

impl<C> Clone for GovClock<C> {
    fn clone(&self) -> Self {
        GovClock {
            clock: self.clock.clone(),
            start: self.start.clone(),
        }
    }
}

impl<C: Clock> governor::clock::Clock for GovClock<C> {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        let t = nanos(self.clock.now());
        self.start.get_or_init(|| t);
        Nanos::from(t)
    }
}

/// governor's `StateStore`: the shared `tat` table, with the reload clamp
/// and the key cap.
struct TatStore<C> {
    tats: Arc<DashMap<Key, u64>>,
    clock: Arc<C>,
    start: Arc<OnceLock<u64>>,
    interval: u64,
    tau: u64,
    max_keys: usize,
}

impl<C: Clock> governor::state::StateStore for TatStore<C> {
    type Key = Key;

    fn measure_and_replace<T, F, E>(&self, key: &Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let start = self.start.get().copied().unwrap_or(0);
        let now = nanos(self.clock.now());
        // Under one rate, tat never exceeds now + tau + T; more means the
        // rate was loosened by a reload, and the clamp applies it at once.
        let cap = now.saturating_add(self.tau).saturating_add(self.interval);
        let local = |tat: u64| Nanos::from(tat.saturating_sub(start));
        // A known key: its shard's write lock is held while governor decides, so one key's
        // check and update are atomic while other shards go on (and no key is copied).
        if let Some(mut stored) = self.tats.get_mut(key) {
            let clamped = (*stored).min(cap);
            return match f(Some(local(clamped))) {
                Ok((t, next)) => {
                    *stored = next.as_u64().saturating_add(start);
                    Ok(t)
                }
                Err(e) => {
                    *stored = clamped;
                    Err(e)
                }
            };
        }
        if self.tats.len() >= self.max_keys {
            evict(&self.tats, now);
        }
        match self.tats.entry(key.clone()) {
            // Inserted by another thread in between: decide against its value.
            Entry::Occupied(mut o) => {
                let clamped = (*o.get()).min(cap);
                let (t, next) = f(Some(local(clamped)))?;
                *o.get_mut() = next.as_u64().saturating_add(start);
                Ok(t)
            }
            Entry::Vacant(v) => {
                let (t, next) = f(None)?;
                v.insert(next.as_u64().saturating_add(start));
                Ok(t)
            }
        }
    }
}

/// Make room for one key: drop every recovered key, else the one nearest
/// recovery.
fn evict(map: &DashMap<Key, u64>, now: u64) {
    let before = map.len();
    map.retain(|_, tat| *tat > now);
    if map.len() < before {
        return;
    }
    let nearest = map
        .iter()
        .min_by_key(|e| *e.value())
        .map(|e| e.key().clone());
    if let Some(k) = nearest {
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

    /// `[cluster]`: a call the local limiter refuses never reaches the shared count; one it
    /// allows is decided by the shared count.
    #[test]
    fn the_local_limiter_is_a_pre_filter_for_the_shared_one() {
        use std::sync::atomic::AtomicUsize;
        struct Shared(AtomicUsize, RateDecision);
        impl SharedRates for Shared {
            fn check(&self, _: &str, _: &str, _: &str, _: Rate) -> RateDecision {
                self.0.fetch_add(1, Ordering::SeqCst);
                self.1.clone()
            }
        }
        let refusing = Arc::new(Shared(
            AtomicUsize::new(0),
            RateDecision::Limited { retry_after_ms: 77 },
        ));
        let l = limiter(10).with_shared(refusing.clone());
        let r = rate("2/min");
        assert_eq!(
            l.check("c", "s", "t", r),
            RateDecision::Limited { retry_after_ms: 77 }
        );
        assert_eq!(
            l.check("c", "s", "t", r),
            RateDecision::Limited { retry_after_ms: 77 }
        );
        // The local burst of 2 is spent: refused here, the store is not asked.
        assert!(matches!(
            l.check("c", "s", "t", r),
            RateDecision::Limited { retry_after_ms } if retry_after_ms > 1000
        ));
        assert_eq!(refusing.0.load(Ordering::SeqCst), 2);
    }

    /// Micro-benchmark (issue 14, `dashmap`): 4 threads × 50k checks on their own keys, the
    /// limiter (governor over a `DashMap`) against the previous design (the same GCRA under one
    /// `Mutex<HashMap>`). `cargo test --lib ratelimit_contention -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn ratelimit_contention() {
        use std::collections::HashMap;
        use std::sync::Mutex;
        struct MutexGcra(Mutex<HashMap<Key, u64>>, MonotonicClock);
        impl MutexGcra {
            fn check(&self, c: &str, s: &str, t: &str, rate: Rate) -> bool {
                let now = nanos(self.1.now());
                let interval = nanos(rate.per) / u64::from(rate.count);
                let tau = interval * (u64::from(rate.count) - 1);
                let mut map = self.0.lock().unwrap();
                let key = (c.to_string(), s.to_string(), t.to_string());
                let tat = map.get(&key).copied().unwrap_or(now).max(now);
                if tat - now > tau {
                    return false;
                }
                map.insert(key, tat + interval);
                true
            }
        }
        let r = rate("1000000/s");
        let (threads, per) = (4, 50_000);
        let run = |f: &(dyn Fn(&str) + Sync)| {
            let t0 = Instant::now();
            std::thread::scope(|sc| {
                for i in 0..threads {
                    sc.spawn(move || {
                        let client = format!("client-{i}");
                        for _ in 0..per {
                            f(&client);
                        }
                    });
                }
            });
            t0.elapsed()
        };
        let old = MutexGcra(Mutex::new(HashMap::new()), MonotonicClock::new());
        let new = RateLimiter::new();
        let before = run(&|c| {
            old.check(c, "srv", "tool", r);
        });
        let after = run(&|c| {
            new.check(c, "srv", "tool", r);
        });
        let ns = |d: Duration| d.as_nanos() as f64 / f64::from(threads * per);
        println!(
            "rate limiter, {threads} threads: Mutex<HashMap> {:.0} ns/check, governor + DashMap {:.0} ns/check",
            ns(before),
            ns(after)
        );
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
                other => panic!("{other:?}"),
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
