//! Per-key counters with slots that give themselves back on drop: connections per client
//! address (`server.rs`), sessions and processes per client identity (`admission.rs`). One
//! shape for both so a cap is counted the same way everywhere.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

pub struct Counter<K: Hash + Eq + Clone> {
    map: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Clone> Default for Counter<K> {
    fn default() -> Self {
        Counter {
            map: Arc::default(),
        }
    }
}

impl<K: Hash + Eq + Clone> Counter<K> {
    /// One more for `key`, unless it already holds `max`.
    pub fn take(&self, key: K, max: usize) -> Option<Slot<K>> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.clone()).or_insert(0);
        if *n >= max {
            if *n == 0 {
                m.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(Slot {
            map: self.map.clone(),
            key,
        })
    }

    /// How many slots `key` holds now.
    #[cfg(test)]
    pub fn held(&self, key: &K) -> usize {
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.get(key).copied().unwrap_or(0)
    }
}

/// One unit counted against its key; released on drop.
pub struct Slot<K: Hash + Eq + Clone> {
    map: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Slot<K> {
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_gives_back() {
        let c: Counter<&str> = Counter::default();
        let a1 = c.take("a", 2).unwrap();
        let _a2 = c.take("a", 2).unwrap();
        assert!(c.take("a", 2).is_none(), "a is at its cap");
        let _b = c.take("b", 2).expect("another key has its own count");
        drop(a1);
        assert_eq!(c.held(&"a"), 1);
        assert!(c.take("a", 2).is_some());
    }
}
