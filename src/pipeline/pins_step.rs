//! Step: capability baselines (SPEC §5). Calls to held or never-listed tools and prompts are
//! refused before they reach the server; listings coming back are compared with the pins and
//! filtered so the client never sees a changed, new or poisoned definition.

use std::time::SystemTime;

use serde_json::Value;

use super::Pipeline;
use crate::audit::{Decision, Record};
use crate::codec::Envelope;
use crate::errors::Rejection;
use crate::pins::{CallDecision, Kind, Page, PinEvent};
use crate::session::Pending;
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
    /// Refuse a call to something the baseline does not allow.
    pub(super) fn check_pinned(&self, kind: Kind, name: &str) -> Result<(), Rejection> {
        let Some(pins) = self.guards.pins.as_ref() else {
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
        // An unknown name is routine (typos, stale clients); a held one is what an alert is for.
        r.alert = !matches!(decision, CallDecision::Unknown);
        Err(r)
    }

    /// Compare a listing answer with the baseline. Returns the bytes to forward instead when
    /// something was held back, and records what changed.
    pub(super) fn observe_listing(
        &self,
        pending: &Pending,
        env: &Envelope,
        line: &[u8],
        record: &mut Record,
    ) -> Option<Vec<u8>> {
        let pins = self.guards.pins.as_ref()?;
        let kind = listing_kind(&pending.method)?;
        let result: Value = serde_json::from_str(env.result?.get()).ok()?;
        let items = result.get(kind.listing_field())?.as_array()?;
        let page = Page {
            continued: pending.paged,
            more: result.get("nextCursor").is_some_and(|c| !c.is_null()),
        };
        let decision = pins.observe(kind, items, page, SystemTime::now());
        self.note_pin_events(&decision.events, record);
        if let Some(e) = &decision.error {
            tracing::warn!("pins for {}: {e}", self.server);
            record.reason = Some(e.clone());
        }
        if !decision.is_filtered() {
            return None;
        }
        let mut message: Value = serde_json::from_slice(line).ok()?;
        message["result"][kind.listing_field()] = Value::Array(decision.exposed(items));
        record.decision = Decision::Rewrite;
        record.detail.get_or_insert_with(|| serde_json::json!({}))["held"] =
            serde_json::json!(decision.held);
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
