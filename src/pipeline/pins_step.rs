//! Step: capability baselines (SPEC §5). Calls to held or never-listed tools and prompts are
//! refused before they reach the server; listings coming back are compared with the pins and
//! filtered so the client never sees a changed, new or poisoned definition.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::Pipeline;
use crate::audit::{Decision, Record};
use crate::codec::Envelope;
use crate::errors::Rejection;
use crate::pins::{variant, Baseline, Kind, Page, PinEvent};
use crate::policy::ServerRef;
use crate::session::{Pending, Session};
use crate::trust::{Observation, Severity};

/// The listing methods the baseline covers, and what they list.
pub(super) fn listing_kind(method: &str) -> Option<Kind> {
    match method {
        "tools/list" => Some(Kind::Tool),
        "prompts/list" => Some(Kind::Prompt),
        "resources/templates/list" => Some(Kind::ResourceTemplate),
        _ => None,
    }
}

impl Pipeline {
    /// The baseline this session's listings and calls are judged by: the variant for its era
    /// and declared capabilities (`pins::variant`), so tool sets a server legitimately varies
    /// by client never read as drift.
    pub(super) fn pins_for(&self, s: &Session) -> Option<Arc<Baseline>> {
        let pins = self.guards.pins.as_ref()?;
        Some(pins.variant(&variant::label(&s.era, s.client_caps.as_ref())))
    }

    /// Refuse a call to something the baseline does not allow.
    pub(super) fn check_pinned(
        &self,
        s: &Session,
        kind: Kind,
        name: &str,
    ) -> Result<(), Rejection> {
        let Some(pins) = self.pins_for(s) else {
            return Ok(());
        };
        let decision = pins.check(kind, name);
        let Some(code) = decision.error_code() else {
            return Ok(());
        };
        let message = decision.error_message(kind, name);
        let reason = match decision.reason() {
            "" => message.clone(),
            r => r.to_owned(),
        };
        let mut r = Rejection::new(code, decision.audit_event(), decision.rule(), reason);
        r.message = Some(message);
        // Guessing at names that were never offered is probing (POL-01): alert on it too.
        r.alert = true;
        Err(r)
    }

    /// Compare a listing answer with the baseline and the policy. Returns the bytes to forward
    /// instead when something was held back or hidden, and records what changed.
    pub(super) fn observe_listing(
        &self,
        s: &mut Session,
        pending: &Pending,
        env: &Envelope,
        line: &[u8],
        record: &mut Record,
    ) -> Option<Vec<u8>> {
        let kind = listing_kind(&pending.method)?;
        let result: Value = serde_json::from_str(env.result?.get()).ok()?;
        let items = result.get(kind.listing_field())?.as_array()?;
        let mut keep = vec![true; items.len()];
        let mut held = Vec::new();
        if let Some(pins) = self.pins_for(s) {
            let more = result.get("nextCursor").is_some_and(|c| !c.is_null());
            let page = Page {
                continued: pending.paged,
                more,
            };
            let decision = pins.observe(kind, items, page, SystemTime::now());
            self.note_pin_events(&decision.events, record);
            if let Some(e) = &decision.error {
                record.reason = Some(e.clone());
            }
            if decision.keep.len() == items.len() {
                keep = decision.keep;
            }
            held = decision.held;
        }
        let mut hidden = Vec::new();
        if kind == Kind::Tool {
            // New annotations may change policy defaults: resolve again on the next call.
            s.policy_cache.clear();
            let set = self.guards.policy.as_ref().map(|p| p.current());
            let server = ServerRef {
                name: &self.server,
                argv: &self.guards.server_argv,
            };
            for (item, keep) in items.iter().zip(keep.iter_mut()) {
                let Some(name) = item.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let annotations = item.get("annotations");
                if *keep {
                    s.tool_annotations
                        .insert(name.to_owned(), annotations.cloned().unwrap_or(Value::Null));
                }
                // A tool the policy denies is not shown at all (calls to it are still refused).
                if set
                    .as_ref()
                    .is_some_and(|set| set.is_hidden(&server, name, annotations))
                    && *keep
                {
                    *keep = false;
                    hidden.push(name.to_owned());
                }
            }
        }
        if keep.iter().all(|k| *k) {
            return None;
        }
        let exposed: Vec<Value> = items
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(i, _)| i.clone())
            .collect();
        let mut message: Value = serde_json::from_slice(line).ok()?;
        message["result"][kind.listing_field()] = Value::Array(exposed);
        record.decision = Decision::Rewrite;
        let detail = record.detail.get_or_insert_with(|| serde_json::json!({}));
        detail["held"] = serde_json::json!(held);
        detail["hidden_by_policy"] = serde_json::json!(hidden);
        serde_json::to_vec(&message).ok()
    }

    fn note_pin_events(&self, events: &[PinEvent], record: &mut Record) {
        if events.is_empty() {
            return;
        }
        let first_alert = events.iter().find(|e| e.is_alert());
        record.event = first_alert.unwrap_or(&events[0]).audit_event().to_owned();
        record.alert = first_alert.is_some();
        record.detail = Some(serde_json::json!({ "pins": events }));
        for e in events {
            if e.is_alert() {
                eprintln!("mcp-warden: {}: {}", self.server, e.message());
            }
            let Some(trust) = &self.guards.trust else {
                continue;
            };
            match e {
                PinEvent::Drift { .. } => {
                    trust.record(Observation::Drift);
                    trust.record(Observation::Alert {
                        severity: Severity::Medium,
                    });
                }
                PinEvent::Flagged { .. } => trust.record(Observation::Alert {
                    severity: Severity::High,
                }),
                PinEvent::New { .. } => trust.record(Observation::Drift),
                _ => {}
            }
        }
    }
}
