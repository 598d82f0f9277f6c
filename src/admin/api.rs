//! The JSON endpoints: servers with their trust scores, recent alerts, and the approval queue
//! (list, approve, deny). Each returns `(status, JSON body)`; `server.rs` wraps it.

use hyper::StatusCode;
use serde_json::{json, Value};

use super::metrics::Metrics;
use crate::approval::{ApprovalQueue, Signer, TicketStore};
use crate::trust::{self, TrustStore};

pub type Reply = (StatusCode, Value);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn error(status: StatusCode, reason: impl Into<String>) -> Reply {
    (status, json!({ "error": reason.into() }))
}

/// `(server, score)` for every configured server and every server with a trust file. Read from
/// the store on each call, so every proxy process sharing the state dir is reflected.
pub fn trust_scores(store: &TrustStore, configured: &[String]) -> Vec<(String, f64)> {
    let now = now();
    let mut names: Vec<String> = configured.to_vec();
    match store.servers() {
        Ok(found) => names.extend(found),
        Err(e) => tracing::warn!("trust store unreadable: {e}"),
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| match trust::report(store, &name, now) {
            Ok(r) => Some((name, r.score)),
            Err(e) => {
                tracing::warn!("trust of {name}: {e}");
                None
            }
        })
        .collect()
}

pub fn servers(store: &TrustStore, configured: &[String]) -> Reply {
    let list: Vec<Value> = trust_scores(store, configured)
        .into_iter()
        .map(|(name, score)| json!({ "name": name, "trust_score": score }))
        .collect();
    (StatusCode::OK, Value::Array(list))
}

pub fn alerts(metrics: &Metrics) -> Reply {
    (StatusCode::OK, Value::Array(metrics.recent_alerts()))
}

pub fn approvals(store: &dyn TicketStore) -> Reply {
    match ApprovalQueue::list_in(store) {
        Ok(list) => match serde_json::to_value(list) {
            Ok(v) => (StatusCode::OK, v),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("approval queue unreadable: {e}"),
        ),
    }
}

/// `POST /api/v1/approvals/ID/approve|deny`.
/// The decision is signed with `signer` (the proxy's identity key), so the waiting proxy can
/// tell it from an edited ticket file.
pub fn decide(store: &dyn TicketStore, id: &str, verb: &str, signer: Option<&Signer>) -> Reply {
    let approve = match verb {
        "approve" => true,
        "deny" => false,
        _ => return error(StatusCode::NOT_FOUND, "use .../approve or .../deny"),
    };
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an approval id"),
        );
    }
    if store.get(id).is_err() {
        return error(
            StatusCode::NOT_FOUND,
            format!("no pending approval {id} (already decided, timed out, or never asked)"),
        );
    }
    let Some(signer) = signer else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this proxy has no identity key to sign decisions with; use `mcp-warden approve`",
        );
    };
    match ApprovalQueue::decide_in(store, id, approve, signer) {
        Ok(ticket) => {
            tracing::warn!(
                "admin API {} approval {} ({} on {})",
                if approve { "granted" } else { "denied" },
                ticket.id,
                ticket.tool,
                ticket.server
            );
            match serde_json::to_value(ticket) {
                Ok(v) => (StatusCode::OK, v),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Err(reason) => error(StatusCode::CONFLICT, reason),
    }
}
