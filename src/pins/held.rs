//! The held file `pins/<server>.held.json`: definitions a running proxy kept from the client
//! (changed, new, or flagged by the scanner), waiting for `pins diff` / `pins approve`.
//!
//! It is separate from the pin file because it changes while proxies run; writing it into the pin
//! file would break an operator's attestation every time a server drifted. It is staging only and
//! never trusted: approval copies a held definition into the pin file, which is what counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pins::error::PinError;
use crate::pins::file::{Kind, Origin};

/// Why a definition is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldReason {
    /// Pinned before, now listed with a different definition.
    Changed,
    /// Never approved (including everything on first contact under `pins.require`).
    New,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldItem {
    pub reason: HeldReason,
    pub sha256: String,
    pub definition: Value,
    /// Scanner findings; non-empty means poisoning is suspected, not only drift.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// True under `on_drift = "alert"`: the client sees it, the operator still has to approve it.
    #[serde(default)]
    pub exposed: bool,
    pub first_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldFile {
    pub server: String,
    /// Lets `pins approve` create the pin file when none exists yet (`pins.require`).
    pub origin: Origin,
    #[serde(default)]
    pub items: BTreeMap<Kind, BTreeMap<String, HeldItem>>,
}

impl HeldFile {
    pub fn new(server: &str, origin: Origin) -> Self {
        HeldFile {
            server: server.to_string(),
            origin,
            items: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.values().all(BTreeMap::is_empty)
    }

    pub fn get(&self, kind: Kind, key: &str) -> Option<&HeldItem> {
        self.items.get(&kind).and_then(|m| m.get(key))
    }

    /// Records a held definition. A definition already held keeps its `first_seen`, so a
    /// listing repeated every few seconds does not rewrite the file.
    pub fn hold(&mut self, kind: Kind, key: &str, mut item: HeldItem) {
        let section = self.items.entry(kind).or_default();
        if let Some(old) = section.get(key) {
            if old.sha256 == item.sha256 {
                item.first_seen.clone_from(&old.first_seen);
            }
        }
        section.insert(key.to_string(), item);
    }

    pub fn release(&mut self, kind: Kind, key: &str) -> Option<HeldItem> {
        let section = self.items.get_mut(&kind)?;
        let item = section.remove(key);
        if section.is_empty() {
            self.items.remove(&kind);
        }
        item
    }

    /// Every held item, in a stable order (kind, then key).
    pub fn iter(&self) -> impl Iterator<Item = (Kind, &str, &HeldItem)> {
        self.items
            .iter()
            .flat_map(|(kind, m)| m.iter().map(move |(k, item)| (*kind, k.as_str(), item)))
    }

    pub fn from_value(value: &Value, path: &Path) -> Result<Self, PinError> {
        serde_json::from_value(value.clone()).map_err(|e| PinError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    pub fn to_value(&self) -> Result<Value, PinError> {
        serde_json::to_value(self).map_err(|e| PinError::Format {
            path: Default::default(),
            reason: e.to_string(),
        })
    }
}

/// The `first_seen` stamp for a hold made at `now`.
pub fn stamp(now: SystemTime) -> String {
    crate::timefmt::rfc3339_micros(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(sha: &str, seen: &str) -> HeldItem {
        HeldItem {
            reason: HeldReason::Changed,
            sha256: sha.into(),
            definition: json!({"name": "t"}),
            findings: vec![],
            exposed: false,
            first_seen: seen.into(),
        }
    }

    #[test]
    fn hold_keeps_first_seen_for_the_same_definition() {
        let mut held = HeldFile::new("s", Origin::Url { url: "u".into() });
        held.hold(Kind::Tool, "t", item("aa", "one"));
        held.hold(Kind::Tool, "t", item("aa", "two"));
        assert_eq!(held.get(Kind::Tool, "t").unwrap().first_seen, "one");
        held.hold(Kind::Tool, "t", item("bb", "three"));
        assert_eq!(held.get(Kind::Tool, "t").unwrap().first_seen, "three");
        assert!(held.release(Kind::Tool, "t").is_some());
        assert!(held.is_empty());
        assert!(held.items.is_empty(), "empty sections are dropped");
    }

    #[test]
    fn round_trip() {
        let mut held = HeldFile::new(
            "s",
            Origin::Command {
                command: vec!["x".into()],
            },
        );
        held.hold(Kind::Prompt, "p", item("aa", "one"));
        let value = held.to_value().unwrap();
        assert_eq!(value["items"]["prompt"]["p"]["reason"], "changed");
        assert_eq!(HeldFile::from_value(&value, Path::new("h")).unwrap(), held);
    }
}
