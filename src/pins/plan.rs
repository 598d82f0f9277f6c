//! The decision for one listing, made inside the store transaction (exclusive lock held):
//! compare with the pin, scan what no operator approved, pin on first use, record holds.

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde_json::Value;

use crate::pins::baseline::{BaselineConfig, OnDrift, Page};
use crate::pins::decision::PinEvent;
use crate::pins::drift::{self, ItemDrift};
use crate::pins::error::PinError;
use crate::pins::file::{Kind, Origin, PinFile, Pinned};
use crate::pins::held::{self, HeldFile, HeldItem, HeldReason};
use crate::pins::scan::{Flag, Scanner};
use crate::pins::store::Snapshot;
use crate::sig::attestation;

/// What a listing is judged against: one server's identity and settings.
pub(super) struct Context<'a> {
    pub(super) server: &'a str,
    pub(super) origin: &'a Origin,
    pub(super) config: &'a BaselineConfig,
    pub(super) scanner: &'a Scanner,
    /// `(key, sha256)` pinned in the server's other variants (only while deciding a listing).
    pub(super) elsewhere: Option<&'a BTreeSet<(String, String)>>,
}

/// One listing's outcome before it is applied to the state.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) keep: Vec<bool>,
    pub(super) allowed: Vec<String>,
    /// (key, live sha256, pinned before: the client knew it → -32015 rather than -32602).
    pub(super) held: Vec<(String, String, bool)>,
    /// (item key, state tag, event): the baseline reports an event only when an item's tag
    /// differs from the one it last reported.
    pub(super) events: Vec<(String, String, PinEvent)>,
    /// Items back to their pinned definition: their report history is cleared.
    pub(super) unchanged: Vec<String>,
    pub(super) error: Option<String>,
    pub(super) tofu: bool,
}

/// The pin file, if any, after the checks that make it trustworthy.
pub(super) fn trusted_pin(ctx: &Context<'_>, snap: &Snapshot) -> Result<Option<PinFile>, PinError> {
    let Some(raw) = &snap.pin else {
        return Ok(None);
    };
    if ctx.config.require_signed {
        attestation::verify(raw, &ctx.config.operator_keys).map_err(|source| {
            PinError::Untrusted {
                server: ctx.server.to_string(),
                source,
            }
        })?;
    }
    let file = PinFile::from_value(raw, &snap.paths.pin)?;
    if file.server != ctx.server {
        return Err(PinError::WrongServer {
            path: snap.paths.pin.clone(),
            found: file.server,
            wanted: ctx.server.to_string(),
        });
    }
    Ok(Some(file))
}

/// The decision for one listing, made under the store's exclusive lock.
pub(super) fn decide(
    ctx: &Context<'_>,
    kind: Kind,
    listing: &[Value],
    page: Page,
    tofu_continues: bool,
    now: SystemTime,
    snap: &mut Snapshot,
) -> Result<Plan, PinError> {
    let pin = trusted_pin(ctx, snap)?;
    let section = pin.as_ref().and_then(|p| p.section(kind));
    let signed = pin.as_ref().is_some_and(PinFile::is_signed);
    // First use pins only what no operator has spoken for: not under `require`, and never
    // into a signed file (that would silently strip the operator's attestation).
    // A pin file that disappeared for a server with history (it was pinned here before, or the
    // trust store knows it) is not a first use: a tool deleting it must not get a rug-pulled
    // definition re-pinned. Everything is held until `pins approve`.
    let missing = snap.pin.is_none() && (snap.seen || ctx.config.known_before);
    let tofu = tofu_continues
        || (section.is_none()
            && !ctx.config.require
            && !ctx.config.require_signed
            && !signed
            && !missing);
    let alert = ctx.config.on_drift == OnDrift::Alert && section.is_some();
    // Definitions approved in another variant may be added to this variant's file only where
    // no operator attestation covers it (or is required).
    let writable = !signed && !ctx.config.require_signed;
    let cmp = drift::compare(kind, section, listing);
    let mut held = snap
        .held
        .take()
        .unwrap_or_else(|| HeldFile::new(ctx.server, ctx.origin.clone()));
    let mut plan = Plan {
        keep: vec![false; listing.len()],
        tofu,
        ..Plan::default()
    };
    if missing && !listing.is_empty() {
        let file = snap.paths.pin.display().to_string();
        plan.events
            .push(("\0missing".into(), file.clone(), PinEvent::Missing { file }));
    }
    let mut first_pins: Vec<(String, Pinned)> = Vec::new();
    let own_names: Vec<&str> = listing
        .iter()
        .filter_map(|d| d.get("name").and_then(Value::as_str))
        .collect();
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
        let (flags, notes): (Vec<Flag>, Vec<Flag>) = (ctx.scanner)(definition, &own_names)
            .into_iter()
            .partition(|f| f.hold);
        if !notes.is_empty() {
            // Alert once per definition; nothing is held for it.
            let event = PinEvent::Noted {
                kind,
                name: item.key.clone(),
                flags: notes,
            };
            plan.events
                .push((format!("\0note:{}", item.key), item.sha256.clone(), event));
        }
        // New to this variant but pinned, identical, in another variant of the same server
        // (`variant.rs`): already approved, so it passes (and joins this variant's pins where
        // the file is ours to write). A changed definition never takes this path.
        let approved_elsewhere = reason == HeldReason::New
            && ctx
                .elsewhere
                .is_some_and(|e| e.contains(&(item.key.clone(), item.sha256.clone())));
        if reason == HeldReason::New && (tofu || approved_elsewhere) && flags.is_empty() {
            plan.keep[item.index] = true;
            plan.allowed.push(item.key.clone());
            if tofu || writable {
                first_pins.push((item.key, Pinned::new(definition.clone())?));
            }
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
        plan.events
            .push((format!("\0{}", bad.reason), String::new(), event));
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
    if tofu || !first_pins.is_empty() {
        let mut file = match pin {
            Some(mut file) => {
                file.touch(now);
                file
            }
            None => PinFile::new(ctx.server, ctx.origin.clone(), now),
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
            ctx.server,
            kind.label(),
            plan.held.len(),
            ctx.server,
            if ctx.config.require_signed {
                " and `pins sign`"
            } else {
                ""
            }
        ));
    }
    snap.held = Some(held);
    Ok(plan)
}
