//! The runtime baseline for one server: the pipeline hands it every list result and asks it
//! about every call. Transport-agnostic (stdio `wrap` and HTTP `serve` share it) and `Sync`.
//!
//! Each listing is one transaction on the store (lock, read pin + held, decide, write, unlock),
//! so concurrent proxies for one server agree on first-use pins and see each other's holds. The
//! in-memory state only caches the last decision, so `check` answers without touching disk
//! unless the item is held (then it re-reads the pin: an approval takes effect at once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;

use crate::pins::decision::{CallDecision, ListingDecision, PinEvent};
use crate::pins::error::PinError;
use crate::pins::file::{Kind, Origin};
use crate::pins::plan::{self, Context};
use crate::pins::scan::Scanner;
use crate::pins::store::PinStore;
use crate::pins::variant;
use crate::sig::TrustedKeys;

/// `pins.on_drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDrift {
    #[default]
    Hold,
    /// Expose changed and new items, but alert. Scanner hits are held regardless.
    Alert,
}

/// `[pins]` settings that change decisions.
#[derive(Debug, Clone, Default)]
pub struct BaselineConfig {
    /// No trust on first use: nothing is exposed until `pins approve`.
    pub require: bool,
    /// Only a pin file attested by an operator key in `operator_keys` is trusted.
    pub require_signed: bool,
    pub on_drift: OnDrift,
    pub operator_keys: TrustedKeys,
    /// The server has a history outside the pin store (trust records older than this
    /// process): a missing pin file is then an alert, not a first use.
    pub known_before: bool,
}

/// Which part of a (possibly paginated) listing this is. Removals are only judged on a complete
/// listing; first-use pinning continues across the pages of the first listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The request carried a `cursor`.
    pub continued: bool,
    /// The result carried a `nextCursor`.
    pub more: bool,
}

impl Page {
    pub const COMPLETE: Page = Page {
        continued: false,
        more: false,
    };
}

pub struct Baseline {
    /// The pin store name: the server, or `server@label` for a variant (`variant.rs`).
    server: String,
    /// The configured server name all variants share.
    family: String,
    origin: Origin,
    store: PinStore,
    config: BaselineConfig,
    scanner: Scanner,
    /// Serializes listings of this process so their results apply in order; `check` never
    /// waits on it (or on disk).
    observing: Mutex<()>,
    state: Mutex<State>,
    /// The variants of this (base) baseline, made on first use; labels are bounded.
    variants: Mutex<BTreeMap<String, Arc<Baseline>>>,
}

#[derive(Default)]
struct State {
    kinds: BTreeMap<Kind, KindState>,
    /// Set when the pins cannot be trusted: every call is refused.
    untrusted: Option<String>,
    /// Last reported state per item, so a listing repeated every few seconds is audited once.
    reported: BTreeMap<(Kind, String), String>,
    /// Kinds whose first-use pinning is still taking pages.
    tofu_open: BTreeSet<Kind>,
}

#[derive(Default)]
struct KindState {
    allowed: BTreeSet<String>,
    /// Held items → live sha256: `true` if the client knew them (pinned) → -32015.
    held: BTreeMap<String, (String, bool)>,
}

impl Baseline {
    pub fn new(
        server: &str,
        origin: Origin,
        store: PinStore,
        config: BaselineConfig,
        scanner: Scanner,
    ) -> Self {
        Baseline {
            server: server.to_string(),
            family: server.to_string(),
            origin,
            store,
            config,
            scanner,
            observing: Mutex::new(()),
            state: Mutex::new(State::default()),
            variants: Mutex::new(BTreeMap::new()),
        }
    }

    /// The baseline of variant `label` of this server (`""`: this one).
    pub fn variant(self: &Arc<Self>, label: &str) -> Arc<Baseline> {
        let name = variant::store_name(&self.family, label);
        if name == self.server {
            return self.clone();
        }
        lock(&self.variants)
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Baseline {
                    server: name,
                    family: self.family.clone(),
                    origin: self.origin.clone(),
                    store: self.store.clone(),
                    // A variant the server has not been seen in yet is first contact for that
                    // variant, not a vanished pin file (its own `.seen` marker still guards it).
                    config: BaselineConfig {
                        known_before: false,
                        ..self.config.clone()
                    },
                    scanner: self.scanner.clone(),
                    observing: Mutex::new(()),
                    state: Mutex::new(State::default()),
                    variants: Mutex::new(BTreeMap::new()),
                })
            })
            .clone()
    }

    /// `(key, sha256)` of the `kind` definitions pinned in the other variants of this server.
    /// Read before the listing's transaction takes this variant's lock (never two locks at once:
    /// two variants listing together must not wait on each other). Unreadable or untrusted
    /// siblings count for nothing.
    fn pinned_elsewhere(&self, kind: Kind) -> BTreeSet<(String, String)> {
        let mut found = BTreeSet::new();
        for name in self.store.servers().unwrap_or_default() {
            if name == self.server || !variant::is_family(&name, &self.family) {
                continue;
            }
            let ctx = Context {
                server: &name,
                ..self.context()
            };
            let Ok(Some(pin)) = self
                .store
                .read(&name)
                .and_then(|s| plan::trusted_pin(&ctx, &s))
            else {
                continue;
            };
            for (key, pinned) in pin.section(kind).into_iter().flatten() {
                found.insert((key.clone(), pinned.sha256.clone()));
            }
        }
        found
    }

    fn context(&self) -> Context<'_> {
        Context {
            server: &self.server,
            origin: &self.origin,
            config: &self.config,
            scanner: &self.scanner,
            elsewhere: None,
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// A complete `tools/list` result's `tools` array.
    pub fn observe_tools(&self, listing: &[Value], now: SystemTime) -> ListingDecision {
        self.observe(Kind::Tool, listing, Page::COMPLETE, now)
    }

    /// Whether calls of `kind` can be judged without a listing: this process saw one, or the
    /// store holds a pinned section (or cannot be read: then calls are refused anyway).
    pub fn has_baseline(&self, kind: Kind) -> bool {
        if lock(&self.state).kinds.contains_key(&kind) {
            return true;
        }
        match self.store.read(&self.server) {
            Ok(snap) => match plan::trusted_pin(&self.context(), &snap) {
                Ok(Some(pin)) => pin.section(kind).is_some(),
                Ok(None) => false,
                Err(_) => true,
            },
            Err(_) => true,
        }
    }

    /// `tools/call`: may it go upstream?
    pub fn check_call(&self, tool: &str) -> CallDecision {
        self.check(Kind::Tool, tool)
    }

    /// One list result (`tools`, `resourceTemplates` or `prompts` array).
    pub fn observe(
        &self,
        kind: Kind,
        listing: &[Value],
        page: Page,
        now: SystemTime,
    ) -> ListingDecision {
        let _serial = lock(&self.observing);
        let tofu_continues = page.continued && lock(&self.state).tofu_open.contains(&kind);
        let elsewhere = self.pinned_elsewhere(kind);
        let ctx = Context {
            elsewhere: Some(&elsewhere),
            ..self.context()
        };
        let outcome = self.store.update(&self.server, |snap| {
            plan::decide(&ctx, kind, listing, page, tofu_continues, now, snap)
        });
        let mut state = lock(&self.state);
        let plan = match outcome {
            Ok(plan) => plan,
            Err(e) => return refuse(&mut state, kind, listing.len(), e),
        };
        state.untrusted = None;
        if plan.tofu && page.more {
            state.tofu_open.insert(kind);
        } else {
            state.tofu_open.remove(&kind);
        }
        let entry = state.kinds.entry(kind).or_default();
        if !page.continued {
            *entry = KindState::default();
        }
        for key in &plan.allowed {
            entry.held.remove(key);
            entry.allowed.insert(key.clone());
        }
        for (key, sha, known) in &plan.held {
            entry.allowed.remove(key);
            entry.held.insert(key.clone(), (sha.clone(), *known));
        }
        for key in plan.unchanged {
            state.reported.remove(&(kind, key));
        }
        let mut events = Vec::new();
        for (key, tag, event) in plan.events {
            if state.reported.get(&(kind, key.clone())) != Some(&tag) {
                state.reported.insert((kind, key), tag);
                events.push(event);
            }
        }
        ListingDecision {
            kind,
            keep: plan.keep,
            held: plan.held.into_iter().map(|(key, _, _)| key).collect(),
            events,
            error: plan.error,
        }
    }

    /// A call to `key` (`tools/call` name, `prompts/get` name).
    pub fn check(&self, kind: Kind, key: &str) -> CallDecision {
        let held = {
            let state = lock(&self.state);
            if let Some(reason) = &state.untrusted {
                return CallDecision::Untrusted {
                    reason: reason.clone(),
                };
            }
            let Some(ks) = state.kinds.get(&kind) else {
                drop(state);
                return self.check_from_store(kind, key);
            };
            if ks.allowed.contains(key) {
                return CallDecision::Allowed;
            }
            match ks.held.get(key) {
                Some(held) => held.clone(),
                None => return CallDecision::Unknown,
            }
        };
        let (sha, known) = held;
        // Approved by another process since the listing? Then the client's view is current.
        if self.pinned_sha(kind, key).ok().flatten().as_deref() == Some(sha.as_str()) {
            let mut state = lock(&self.state);
            if let Some(ks) = state.kinds.get_mut(&kind) {
                ks.held.remove(key);
                ks.allowed.insert(key.to_string());
            }
            return CallDecision::Allowed;
        }
        if known {
            CallDecision::HeldChanged {
                reason: self.held_reason(kind, key),
            }
        } else {
            CallDecision::Unknown
        }
    }

    fn held_reason(&self, kind: Kind, key: &str) -> String {
        format!(
            "the definition of {} {key:?} changed since it was pinned; review it with \
             `mcp-warden pins diff {}` and accept it with `mcp-warden pins approve {} {key}`",
            kind.label(),
            self.server,
            self.server
        )
    }

    /// Before this process has seen a listing (a client that cached the list, a stateless HTTP
    /// request): answer from the pin file, and from the held file other proxies wrote.
    fn check_from_store(&self, kind: Kind, key: &str) -> CallDecision {
        let snap = match self.store.read(&self.server) {
            Ok(snap) => snap,
            Err(e) => {
                return CallDecision::Untrusted {
                    reason: e.to_string(),
                }
            }
        };
        let pin = match plan::trusted_pin(&self.context(), &snap) {
            Ok(Some(pin)) => pin,
            Ok(None) => return CallDecision::Unknown,
            Err(e) => {
                return CallDecision::Untrusted {
                    reason: e.to_string(),
                }
            }
        };
        if pin.get(kind, key).is_none() {
            return CallDecision::Unknown;
        }
        match snap.held.as_ref().and_then(|h| h.get(kind, key)) {
            Some(item) if !item.exposed => CallDecision::HeldChanged {
                reason: self.held_reason(kind, key),
            },
            _ => CallDecision::Allowed,
        }
    }

    fn pinned_sha(&self, kind: Kind, key: &str) -> Result<Option<String>, PinError> {
        let snap = self.store.read(&self.server)?;
        let pin = plan::trusted_pin(&self.context(), &snap)?;
        Ok(pin.and_then(|p| p.get(kind, key).map(|e| e.sha256.clone())))
    }
}

/// Fail closed: a store we cannot read or trust exposes nothing and refuses every call.
fn refuse(state: &mut State, kind: Kind, len: usize, error: PinError) -> ListingDecision {
    let reason = error.to_string();
    let event = match error {
        PinError::Io { .. } => PinEvent::StoreFailed {
            reason: reason.clone(),
        },
        _ => PinEvent::Untrusted {
            reason: reason.clone(),
        },
    };
    let first_time = state.untrusted.as_deref() != Some(reason.as_str());
    state.untrusted = Some(reason.clone());
    ListingDecision {
        kind,
        keep: vec![false; len],
        held: Vec::new(),
        events: if first_time { vec![event] } else { Vec::new() },
        error: Some(reason),
    }
}

/// A poisoned lock only means another thread panicked mid-update; the state is still a valid
/// cache (every write is a whole-field assignment), so keep serving rather than panic too.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
