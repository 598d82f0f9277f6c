//! The runtime baseline for one server: the pipeline hands it every list result and asks it
//! about every call. Transport-agnostic (stdio `wrap` and HTTP `serve` share it) and `Sync`.
//!
//! Each listing is one transaction on the store (lock, read pin + held, decide, write, unlock),
//! so concurrent proxies for one server agree on first-use pins and see each other's holds. The
//! in-memory state only caches the last decision, so `check` answers without touching disk
//! unless the item is held (then it re-reads the pin: an approval takes effect at once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;

use crate::pins::decision::{CallDecision, ListingDecision, PinEvent};
use crate::pins::drift::{self, ItemDrift};
use crate::pins::error::PinError;
use crate::pins::file::{Kind, Origin, PinFile, Pinned};
use crate::pins::held::{self, HeldFile, HeldItem, HeldReason};
use crate::pins::scan::Scanner;
use crate::pins::store::{PinStore, Snapshot};
use crate::sig::{attestation, TrustedKeys};

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
    server: String,
    origin: Origin,
    store: PinStore,
    config: BaselineConfig,
    scanner: Scanner,
    /// Serializes listings of this process so their results apply in order; `check` never
    /// waits on it (or on disk).
    observing: Mutex<()>,
    state: Mutex<State>,
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

/// One listing's outcome before it is applied to the state.
#[derive(Default)]
struct Plan {
    keep: Vec<bool>,
    allowed: Vec<String>,
    held: Vec<(String, String, bool)>,
    events: Vec<(String, String, PinEvent)>,
    unchanged: Vec<String>,
    error: Option<String>,
    tofu: bool,
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
            origin,
            store,
            config,
            scanner,
            observing: Mutex::new(()),
            state: Mutex::new(State::default()),
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// A complete `tools/list` result's `tools` array.
    pub fn observe_tools(&self, listing: &[Value], now: SystemTime) -> ListingDecision {
        self.observe(Kind::Tool, listing, Page::COMPLETE, now)
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
        let outcome = self.store.update(&self.server, |snap| {
            self.decide(kind, listing, page, tofu_continues, now, snap)
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
            Err(e) => return CallDecision::Untrusted { reason: e.to_string() },
        };
        let pin = match self.trusted_pin(&snap) {
            Ok(Some(pin)) => pin,
            Ok(None) => return CallDecision::Unknown,
            Err(e) => return CallDecision::Untrusted { reason: e.to_string() },
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
        let pin = self.trusted_pin(&snap)?;
        Ok(pin.and_then(|p| p.get(kind, key).map(|e| e.sha256.clone())))
    }

    /// The pin file, if any, after the checks that make it trustworthy.
    fn trusted_pin(&self, snap: &Snapshot) -> Result<Option<PinFile>, PinError> {
        let Some(raw) = &snap.pin else {
            return Ok(None);
        };
        if self.config.require_signed {
            attestation::verify(raw, &self.config.operator_keys).map_err(|source| {
                PinError::Untrusted {
                    server: self.server.clone(),
                    source,
                }
            })?;
        }
        let file = PinFile::from_value(raw, &snap.paths.pin)?;
        if file.server != self.server {
            return Err(PinError::WrongServer {
                path: snap.paths.pin.clone(),
                found: file.server,
                wanted: self.server.clone(),
            });
        }
        Ok(Some(file))
    }

    /// The decision for one listing, made under the store's exclusive lock.
    fn decide(
        &self,
        kind: Kind,
        listing: &[Value],
        page: Page,
        tofu_continues: bool,
        now: SystemTime,
        snap: &mut Snapshot,
    ) -> Result<Plan, PinError> {
        let pin = self.trusted_pin(snap)?;
        let section = pin.as_ref().and_then(|p| p.section(kind));
        let signed = pin.as_ref().is_some_and(PinFile::is_signed);
        // First use pins only what no operator has spoken for: not under `require`, and never
        // into a signed file (that would silently strip the operator's attestation).
        let tofu = tofu_continues
            || (section.is_none() && !self.config.require && !self.config.require_signed && !signed);
        let alert = self.config.on_drift == OnDrift::Alert && section.is_some();
        let cmp = drift::compare(kind, section, listing);
        let mut held = snap
            .held
            .take()
            .unwrap_or_else(|| HeldFile::new(&self.server, self.origin.clone()));
        let mut plan = Plan {
            keep: vec![false; listing.len()],
            tofu,
            ..Plan::default()
        };
        let mut first_pins: Vec<(String, Pinned)> = Vec::new();
        for item in cmp.items {
            let definition = &listing[item.index];
            let (reason, changes) = match item.drift {
                ItemDrift::Unchanged => {
                    held.release(kind, &item.key);
                    plan.keep[item.index] = true;
                    plan.allowed.push(item.key.clone());
                    plan.unchanged.push(item.key);
                    continue;
                }
                ItemDrift::Changed { changes } => (HeldReason::Changed, changes),
                ItemDrift::New => (HeldReason::New, Vec::new()),
            };
            // Only definitions no operator has approved are scanned (SPEC: "when first seen").
            let flags = (self.scanner)(definition);
            if reason == HeldReason::New && tofu && flags.is_empty() {
                plan.keep[item.index] = true;
                plan.allowed.push(item.key.clone());
                first_pins.push((item.key, Pinned::new(definition.clone())?));
                continue;
            }
            let exposed = alert && flags.is_empty();
            let event = if reason == HeldReason::Changed {
                PinEvent::Drift {
                    kind,
                    name: item.key.clone(),
                    schema_only: drift::schema_only(&changes),
                    diff: drift::render(&changes),
                    changes,
                    flags: flags.clone(),
                    exposed,
                }
            } else if flags.is_empty() {
                PinEvent::New {
                    kind,
                    name: item.key.clone(),
                    exposed,
                }
            } else {
                PinEvent::Flagged {
                    kind,
                    name: item.key.clone(),
                    flags: flags.clone(),
                }
            };
            plan.events
                .push((item.key.clone(), item.sha256.clone(), event));
            held.hold(
                kind,
                &item.key,
                HeldItem {
                    reason,
                    sha256: item.sha256.clone(),
                    definition: definition.clone(),
                    findings: flags.into_iter().map(|f| f.detail).collect(),
                    exposed,
                    first_seen: held::stamp(now),
                },
            );
            if exposed {
                plan.keep[item.index] = true;
                plan.allowed.push(item.key);
            } else {
                plan.held
                    .push((item.key, item.sha256, reason == HeldReason::Changed));
            }
        }
        for bad in cmp.invalid {
            let event = PinEvent::Invalid {
                kind,
                reason: bad.reason.clone(),
            };
            plan.events.push((format!("\0{}", bad.reason), String::new(), event));
        }
        if page == Page::COMPLETE {
            for name in cmp.removed {
                let event = PinEvent::Removed {
                    kind,
                    name: name.clone(),
                };
                plan.events.push((name, "\0removed".into(), event));
            }
        }
        if tofu {
            let mut file = match pin {
                Some(mut file) => {
                    file.touch(now);
                    file
                }
                None => PinFile::new(&self.server, self.origin.clone(), now),
            };
            let names: Vec<String> = first_pins.iter().map(|(k, _)| k.clone()).collect();
            file.section_mut(kind).extend(first_pins);
            snap.pin = Some(file.to_value()?);
            if !names.is_empty() {
                let file = snap.paths.pin.display().to_string();
                let tag = names.join(",");
                let event = PinEvent::FirstPin { kind, names, file };
                plan.events.push(("\0first".into(), tag, event));
            }
        } else if section.is_none() && !plan.held.is_empty() {
            plan.error = Some(format!(
                "server {:?} has no approved {}s: {} held until `mcp-warden pins approve {}`{}",
                self.server,
                kind.label(),
                plan.held.len(),
                self.server,
                if self.config.require_signed { " and `pins sign`" } else { "" }
            ));
        }
        snap.held = Some(held);
        Ok(plan)
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
