//! The keys of one JSON object seen so far, for the duplicate-key check.
//!
//! Linear-time (up to a sort of integers) whatever the number of keys. A quadratic scan was a
//! pre-authentication CPU exhaustion: 48k keys in one 0.5 MB body cost 17 s.
//! - While an object is small (MCP objects nearly always are) each key is compared with the
//!   earlier ones as it arrives: a scan of a short vector beats hashing there.
//! - Past [`SMALL`] keys, each key's keyed 64-bit SipHash (std's `RandomState`: a peer cannot
//!   choose keys that collide) is appended to a vector, and the vector is sorted when the
//!   object closes: equal neighbours are the only candidates for a duplicate, and their text
//!   is compared exactly (a 64-bit collision between different keys is not a duplicate).
//!   Appending and sorting integers is sequential memory work; a hash table of half a million
//!   keys missed the cache on every probe and took several times longer.
//!
//! Keys are borrowed from the message unless they carried escapes.

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};

/// Up to this many keys, a linear scan.
const SMALL: usize = 16;

#[derive(Default)]
pub struct KeySet<'a> {
    /// Every key so far, in order.
    keys: Vec<Cow<'a, str>>,
    /// Past `SMALL` keys: the hash of every key (same order as `keys` until `close` sorts it).
    hashes: Vec<u64>,
    hasher: Option<RandomState>,
}

impl<'a> KeySet<'a> {
    /// Keys held so far.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Add `key`. A duplicate among the first `SMALL` keys is handed back at once (for the
    /// error message); later ones are found by [`KeySet::close`].
    pub fn insert(&mut self, key: Cow<'a, str>) -> Result<(), Cow<'a, str>> {
        if let Some(hasher) = &self.hasher {
            self.hashes.push(hasher.hash_one(&*key));
            self.keys.push(key);
            return Ok(());
        }
        if self.keys.contains(&key) {
            return Err(key);
        }
        self.keys.push(key);
        if self.keys.len() > SMALL {
            let hasher = RandomState::new();
            self.hashes
                .extend(self.keys.iter().map(|k| hasher.hash_one(&**k)));
            self.hasher = Some(hasher);
        }
        Ok(())
    }

    /// The object ended: a duplicate among its keys, if any.
    pub fn close(&mut self) -> Result<(), Cow<'a, str>> {
        let Some(hasher) = &self.hasher else {
            return Ok(());
        };
        self.hashes.sort_unstable();
        let mut i = 1;
        while i < self.hashes.len() {
            if self.hashes[i] == self.hashes[i - 1] {
                // Rare: a true duplicate (then we stop) or a 64-bit collision. Compare the text
                // of every key with this hash.
                let h = self.hashes[i];
                let mut same: Vec<&Cow<'a, str>> = self
                    .keys
                    .iter()
                    .filter(|k| hasher.hash_one(&***k) == h)
                    .collect();
                same.sort_unstable();
                if let Some(w) = same.windows(2).find(|w| w[0] == w[1]) {
                    return Err(w[0].clone());
                }
                while i < self.hashes.len() && self.hashes[i] == h {
                    i += 1;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Empty, keeping the allocations for the next object.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.hashes.clear();
        self.hasher = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_all<'a>(k: &mut KeySet<'a>, names: &'a [String]) -> Result<(), Cow<'a, str>> {
        for n in names {
            k.insert(Cow::Borrowed(n.as_str()))?;
        }
        k.close()
    }

    #[test]
    fn finds_duplicates_below_and_above_the_switch() {
        for n in [2, SMALL, SMALL + 1, 100, 5000] {
            let names: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            let mut k = KeySet::default();
            assert_eq!(add_all(&mut k, &names), Ok(()));
            assert_eq!(k.len(), n);
            for dup in [0, n / 2, n - 1] {
                let mut with_dup = names.clone();
                with_dup.push(names[dup].clone());
                let mut k = KeySet::default();
                assert_eq!(
                    add_all(&mut k, &with_dup),
                    Err(Cow::Borrowed(names[dup].as_str())),
                    "{n} keys, duplicate of #{dup}"
                );
            }
        }
    }

    /// Different keys with one hash must still be told apart exactly.
    #[test]
    fn hash_collisions_are_resolved_by_the_text() {
        let names: Vec<String> = (0..40).map(|i| format!("key{i}")).collect();
        let mut k = KeySet::default();
        for n in &names {
            k.insert(Cow::Borrowed(n.as_str())).unwrap();
        }
        // Force a collision: pretend two different keys hashed alike.
        let h = k.hashes[3];
        k.hashes[30] = h;
        let hasher = k.hasher.clone().unwrap();
        assert_ne!(hasher.hash_one(&*k.keys[30]), h);
        assert_eq!(k.close(), Ok(()));
    }
}
