//! Replay cache for `(kid, nonce)` pairs: bounded in time and in entries.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

/// What [`ReplayCache::remember`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remember {
    /// First sighting; now remembered.
    Fresh,
    /// Seen before and not yet expired: a replay.
    Seen,
    /// Not seen, but the cache is full of live entries: refuse (fail closed).
    Full,
}

/// What a claim on the shared (cluster-wide) replay store found (`cluster/replay.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No replica saw this nonce; it is now claimed for the rest of the window.
    Fresh,
    /// Another replica (or this one) already claimed it: a replay.
    Seen,
    /// The store could not be asked and the cluster fails closed (enforce); the reason says why.
    /// In audit mode the store answers `Fresh` instead and raises its alert.
    Unavailable(String),
}

/// The cluster-wide replay cache behind the local one: `(kid, nonce)` claimed atomically with
/// an expiry of the signature window, so a nonce accepted by one replica is refused by all.
pub trait SharedReplay: Send + Sync {
    fn claim(&self, kid: &str, nonce: &[u8], ttl_secs: u64) -> Claim;
}

type ReplayKey = (String, Vec<u8>);

#[derive(Default)]
struct ReplayInner {
    expiry_of: HashMap<ReplayKey, i64>,
    by_expiry: BTreeSet<(i64, ReplayKey)>,
}

/// `(kid, nonce bytes)` seen recently. Bounded: entries leave once their message's timestamp is
/// out of the window (a replay would fail the clock check anyway), and a hard cap refuses new
/// entries rather than forgetting live ones, which would reopen replay.
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<ReplayInner>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(ReplayInner::default()),
        }
    }

    pub fn len(&self) -> usize {
        self.lock().expiry_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, ReplayInner> {
        // Nothing panics while the lock is held, so a poisoned cache is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks and records `(kid, nonce)` atomically. `expires_at` is the last second a message
    /// carrying this nonce could pass the clock check; entries with `expires_at < now` are
    /// evicted first.
    pub fn remember(&self, kid: &str, nonce: &[u8], expires_at: i64, now: i64) -> Remember {
        let mut inner = self.lock();
        while let Some(first) = inner.by_expiry.first() {
            if first.0 >= now {
                break;
            }
            if let Some((_, key)) = inner.by_expiry.pop_first() {
                inner.expiry_of.remove(&key);
            }
        }
        let key = (kid.to_string(), nonce.to_vec());
        if inner.expiry_of.contains_key(&key) {
            return Remember::Seen;
        }
        if inner.expiry_of.len() >= self.capacity {
            return Remember::Full;
        }
        inner.expiry_of.insert(key.clone(), expires_at);
        inner.by_expiry.insert((expires_at, key));
        Remember::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_expiry_then_forgets() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.remember("k", b"n1", 400, 100), Remember::Fresh);
        assert_eq!(cache.remember("k", b"n1", 400, 399), Remember::Seen);
        assert_eq!(cache.remember("other", b"n1", 400, 399), Remember::Fresh);
        assert_eq!(cache.remember("k", b"n1", 500, 400), Remember::Seen); // still live at expiry
        assert_eq!(cache.remember("k", b"n1", 500, 401), Remember::Fresh); // expired, evicted
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn full_of_live_entries_fails_closed() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.remember("k", b"a", 100, 0), Remember::Fresh);
        assert_eq!(cache.remember("k", b"b", 200, 0), Remember::Fresh);
        assert_eq!(cache.remember("k", b"c", 200, 0), Remember::Full);
        assert_eq!(cache.remember("k", b"a", 100, 0), Remember::Seen);
        assert_eq!(cache.remember("k", b"c", 200, 101), Remember::Fresh); // "a" expired
    }
}
