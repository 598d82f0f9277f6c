//! The keys of one JSON object seen so far, for the duplicate-key check.
//!
//! Linear in the number of keys whatever their count: a scan of a short vector while an object
//! is small (MCP objects nearly always are, and a scan beats hashing there), a hash set once it
//! grows past [`SMALL`]. A quadratic scan was a pre-authentication CPU exhaustion: 48k keys in
//! one 0.5 MB body cost 17 s. The set's hasher is std's keyed SipHash, so a peer cannot choose
//! keys that collide. Keys are borrowed from the message unless they carried escapes.

use std::borrow::Cow;
use std::collections::HashSet;

/// Up to this many keys, a linear scan.
const SMALL: usize = 16;

#[derive(Default)]
pub struct KeySet<'a> {
    small: Vec<Cow<'a, str>>,
    big: Option<HashSet<Cow<'a, str>>>,
}

impl<'a> KeySet<'a> {
    /// Keys held so far.
    pub fn len(&self) -> usize {
        match &self.big {
            Some(set) => set.len(),
            None => self.small.len(),
        }
    }

    /// Add `key`; `false` when it was already there (a duplicate).
    pub fn insert(&mut self, key: Cow<'a, str>) -> bool {
        if let Some(set) = &mut self.big {
            return set.insert(key);
        }
        if self.small.contains(&key) {
            return false;
        }
        if self.small.len() < SMALL {
            self.small.push(key);
            return true;
        }
        let mut set: HashSet<Cow<'a, str>> = self.small.drain(..).collect();
        set.insert(key);
        self.big = Some(set);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_below_and_above_the_switch() {
        let mut k = KeySet::default();
        for i in 0..100 {
            assert!(k.insert(Cow::Owned(format!("k{i}"))));
            // Every earlier key is still found, whichever representation holds it.
            assert!(!k.insert(Cow::Owned(format!("k{}", i / 2))));
        }
        assert_eq!(k.len(), 100);
        assert!(!k.insert(Cow::Borrowed("k0")));
        assert!(!k.insert(Cow::Borrowed("k99")));
    }
}
