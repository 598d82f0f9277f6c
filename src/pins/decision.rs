//! What the baseline tells the pipeline: which listed items the client may see, whether a call
//! may go upstream, and the events the audit records.

use serde::Serialize;
use serde_json::Value;

use crate::pins::drift::Change;
use crate::pins::file::Kind;
use crate::pins::scan::Flag;

/// JSON-RPC codes (SPEC §3); the same numbers as `errors::INVALID_PARAMS` / `TOOL_HELD_BACK`,
/// repeated here so this module stays independent of the wire layer.
pub const UNKNOWN_CODE: i64 = -32602;
pub const HELD_CODE: i64 = -32015;

/// The verdict on one list result.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingDecision {
    pub kind: Kind,
    /// One entry per listed item, in order: true = the client may see it.
    pub keep: Vec<bool>,
    /// Keys of the items held back, for the audit record and the operator's message.
    pub held: Vec<String>,
    pub events: Vec<PinEvent>,
    /// Set when nothing of the server may be shown (untrusted pins, unreadable store).
    pub error: Option<String>,
}

impl ListingDecision {
    /// Whether the list must be rewritten; if not, the original bytes go through untouched.
    pub fn is_filtered(&self) -> bool {
        self.keep.iter().any(|k| !k)
    }

    /// The listing as the client should see it (original order).
    pub fn exposed(&self, listing: &[Value]) -> Vec<Value> {
        listing
            .iter()
            .zip(&self.keep)
            .filter(|(_, keep)| **keep)
            .map(|(item, _)| item.clone())
            .collect()
    }
}

/// The verdict on one `tools/call` (or `prompts/get`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallDecision {
    Allowed,
    /// The client knew this item, but its definition drifted: -32015 until approved.
    HeldChanged {
        reason: String,
    },
    /// Never listed, removed, or new and held: -32602, worded as the server would, so a held
    /// new tool's existence is not revealed.
    Unknown,
    /// The pin file cannot be trusted (`require_signed`, unreadable store): -32015 for all.
    Untrusted {
        reason: String,
    },
}

impl CallDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, CallDecision::Allowed)
    }

    /// The JSON-RPC error code, or `None` when the call may go upstream.
    pub fn error_code(&self) -> Option<i64> {
        match self {
            CallDecision::Allowed => None,
            CallDecision::Unknown => Some(UNKNOWN_CODE),
            CallDecision::HeldChanged { .. } | CallDecision::Untrusted { .. } => Some(HELD_CODE),
        }
    }

    /// The JSON-RPC error `message` for a call to `name`.
    pub fn error_message(&self, kind: Kind, name: &str) -> String {
        match self {
            CallDecision::Allowed => String::new(),
            CallDecision::Unknown => match kind {
                Kind::Tool => format!("Unknown tool: {name}"),
                Kind::Prompt => format!("Unknown prompt: {name}"),
                Kind::ResourceTemplate => format!("Unknown resource: {name}"),
            },
            CallDecision::HeldChanged { .. } | CallDecision::Untrusted { .. } => {
                format!(
                    "{} {name} is held back by the capability baseline",
                    kind.label()
                )
            }
        }
    }

    /// `data.rule` of the error.
    pub fn rule(&self) -> &'static str {
        match self {
            CallDecision::Allowed => "",
            CallDecision::Unknown => "pins.unknown",
            CallDecision::HeldChanged { .. } => "pins.drift",
            CallDecision::Untrusted { .. } => "pins.untrusted",
        }
    }

    /// `data.reason`: what the operator can do. Empty for Unknown: that answer reveals nothing.
    pub fn reason(&self) -> &str {
        match self {
            CallDecision::HeldChanged { reason } | CallDecision::Untrusted { reason } => reason,
            CallDecision::Allowed | CallDecision::Unknown => "",
        }
    }

    pub fn audit_event(&self) -> &'static str {
        match self {
            CallDecision::Allowed => "capability.allowed",
            CallDecision::Unknown => "policy.unknown_tool",
            CallDecision::HeldChanged { .. } => "capability.drift",
            CallDecision::Untrusted { .. } => "capability.untrusted_pins",
        }
    }
}

/// Something the audit should record. Events are reported once per distinct definition per
/// `Baseline`, not on every repeated listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PinEvent {
    /// Trust on first use: these items were pinned without review.
    FirstPin {
        kind: Kind,
        names: Vec<String>,
        file: String,
    },
    /// A pinned item changed. `exposed` is true under `on_drift = "alert"` (and no scanner hit).
    Drift {
        kind: Kind,
        name: String,
        schema_only: bool,
        diff: String,
        changes: Vec<Change>,
        flags: Vec<Flag>,
        exposed: bool,
    },
    /// An item that was never approved appeared.
    New {
        kind: Kind,
        name: String,
        exposed: bool,
    },
    /// A new item's definition tripped the scanner; held whatever `on_drift` says.
    Flagged {
        kind: Kind,
        name: String,
        flags: Vec<Flag>,
    },
    /// A finding worth an alert that holds nothing back (a tool name another server also uses).
    Noted {
        kind: Kind,
        name: String,
        flags: Vec<Flag>,
    },
    /// A pinned item is no longer listed: noted, not an error (calls to it are Unknown).
    Removed {
        kind: Kind,
        name: String,
    },
    /// An item that cannot be pinned (no key, listed twice, not canonicalizable); never shown.
    Invalid {
        kind: Kind,
        reason: String,
    },
    /// The pin file of a server with history is gone (deleted, or never written back): nothing
    /// is re-pinned, everything is held until `pins approve`.
    Missing {
        file: String,
    },
    Untrusted {
        reason: String,
    },
    StoreFailed {
        reason: String,
    },
}

impl PinEvent {
    pub fn audit_event(&self) -> &'static str {
        match self {
            PinEvent::FirstPin { .. } => "capability.first_pin",
            PinEvent::Drift {
                schema_only: true, ..
            } => "capability.schema_drift",
            PinEvent::Drift { .. } => "capability.drift",
            PinEvent::New { .. } => "capability.new_item",
            // Naming another server's tool is the more specific finding: report it first.
            PinEvent::Flagged { flags, .. } => flags
                .iter()
                .find(|f| f.event == "capability.shadowing")
                .or(flags.first())
                .map_or("poisoning.hidden_instructions", |f| f.event),
            PinEvent::Noted { flags, .. } => flags
                .first()
                .map_or("capability.name_collision", |f| f.event),
            PinEvent::Removed { .. } => "capability.removed",
            PinEvent::Invalid { .. } => "capability.invalid_listing",
            PinEvent::Missing { .. } => "pins.missing",
            PinEvent::Untrusted { .. } => "capability.untrusted_pins",
            PinEvent::StoreFailed { .. } => "capability.store_error",
        }
    }

    /// Whether this should raise an alert, not only an audit line.
    pub fn is_alert(&self) -> bool {
        !matches!(self, PinEvent::FirstPin { .. } | PinEvent::Removed { .. })
    }

    /// One readable paragraph for stderr / the alert body.
    pub fn message(&self) -> String {
        match self {
            PinEvent::FirstPin { kind, names, file } => format!(
                "first contact: pinned {} {}(s) to {file} without review: {}",
                names.len(),
                kind.label(),
                names.join(", ")
            ),
            PinEvent::Drift {
                kind,
                name,
                diff,
                flags,
                exposed,
                ..
            } => {
                let mut text = format!(
                    "{} {name:?} changed since it was pinned ({}):\n{diff}",
                    kind.label(),
                    if *exposed {
                        "exposed: on_drift = alert"
                    } else {
                        "held back"
                    }
                );
                for f in flags {
                    text.push_str(&format!("  scanner: {}\n", f.detail));
                }
                text
            }
            PinEvent::New {
                kind,
                name,
                exposed,
            } => format!(
                "new {} {name:?} was never approved ({})",
                kind.label(),
                if *exposed {
                    "exposed: on_drift = alert"
                } else {
                    "held back"
                }
            ),
            PinEvent::Flagged { kind, name, flags } => {
                let details: Vec<&str> = flags.iter().map(|f| f.detail.as_str()).collect();
                format!(
                    "{} {name:?} held back by the scanner: {}",
                    kind.label(),
                    details.join("; ")
                )
            }
            PinEvent::Noted { kind, name, flags } => {
                let details: Vec<&str> = flags.iter().map(|f| f.detail.as_str()).collect();
                format!(
                    "{} {name:?} shown, but note: {}",
                    kind.label(),
                    details.join("; ")
                )
            }
            PinEvent::Removed { kind, name } => {
                format!("pinned {} {name:?} is no longer listed", kind.label())
            }
            PinEvent::Invalid { reason, .. } => format!("listing item not shown: {reason}"),
            PinEvent::Missing { file } => format!(
                "the pin file {file} of a server seen before is missing: nothing is re-pinned, \
                 every definition is held; review with `mcp-warden pins diff SERVER` and restore \
                 with `mcp-warden pins approve SERVER`"
            ),
            PinEvent::Untrusted { reason } | PinEvent::StoreFailed { reason } => reason.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn call_decisions_map_to_spec_codes() {
        assert_eq!(CallDecision::Allowed.error_code(), None);
        assert_eq!(CallDecision::Unknown.error_code(), Some(-32602));
        assert_eq!(
            CallDecision::Unknown.error_message(Kind::Tool, "exec_shell"),
            "Unknown tool: exec_shell"
        );
        assert_eq!(CallDecision::Unknown.audit_event(), "policy.unknown_tool");
        let held = CallDecision::HeldChanged {
            reason: "run pins diff".into(),
        };
        assert_eq!(held.error_code(), Some(-32015));
        assert_eq!(held.reason(), "run pins diff");
    }

    #[test]
    fn filtering_keeps_order() {
        let d = ListingDecision {
            kind: Kind::Tool,
            keep: vec![true, false, true],
            held: vec!["b".into()],
            events: vec![],
            error: None,
        };
        let listing = [
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "c"}),
        ];
        assert!(d.is_filtered());
        assert_eq!(
            d.exposed(&listing),
            vec![json!({"name": "a"}), json!({"name": "c"})]
        );
    }

    #[test]
    fn event_names() {
        let drift = |schema_only| PinEvent::Drift {
            kind: Kind::Tool,
            name: "t".into(),
            schema_only,
            diff: String::new(),
            changes: vec![],
            flags: vec![],
            exposed: false,
        };
        assert_eq!(drift(false).audit_event(), "capability.drift");
        assert_eq!(drift(true).audit_event(), "capability.schema_drift");
        let removed = PinEvent::Removed {
            kind: Kind::Tool,
            name: "t".into(),
        };
        assert!(!removed.is_alert());
        assert_eq!(
            serde_json::to_value(&removed).unwrap(),
            json!({"type": "removed", "kind": "tool", "name": "t"})
        );
    }
}
