//! The JSON endpoints the dashboard's pages read (beside the original `api.rs` ones, which it
//! uses as they are: `/approvals` and its approve / deny):
//!
//! | endpoint                                    | page                                     |
//! |---------------------------------------------|------------------------------------------|
//! | `GET /api/v1/overview`                      | Servers: transport, era, pins, trust, 24 h |
//! | `GET /api/v1/pins`                          | Drift: held definitions against their pins |
//! | `POST /api/v1/pins/SERVER/approve/ITEM`     | Drift: `pins approve SERVER ITEM`        |
//! | `POST /api/v1/pins/SERVER/keep/ITEM`        | Drift: leave it held, on the record      |
//! | `GET /api/v1/audit/files`                   | Audit: `audit verify` of each file       |
//! | `GET /api/v1/alerts/trail`                  | Alerts: the trail's alerts, severity, ack |
//! | `POST /api/v1/alerts/AUDIT_ID/ack`          | Alerts: acknowledge one                  |
//!
//! Every operator action taken here is written to the audit trail (its own file,
//! `…-admin-PID.jsonl`, checkpointed with the identity key) before it is answered. Work that
//! reads files runs on a blocking thread: the admin runtime has one thread.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::activity;
use super::api::Reply;
use crate::audit::{AuditLog, Decision, Direction, Fsync, Record};
use crate::config::{self, Config};
use crate::pins::PinStore;
use crate::trust::{self, TrustStore};

/// What the dashboard endpoints need, built once by `admin::spawn`.
pub struct Dashboard {
    /// Trust histories: the state dir's, or the cluster's (the same store the API reads).
    trust: TrustStore,
    pub(super) audit_dir: PathBuf,
    pins_dir: PathBuf,
    /// `(name, transport)` of every `[[servers]]` entry of this process's config.
    configured: Vec<(String, &'static str)>,
    fsync: Fsync,
    /// Signs the checkpoints of the operator-action file; verifies the trail's checkpoints.
    pub(super) key: Option<ed25519_dalek::SigningKey>,
    acked: Mutex<HashSet<String>>,
    log: OnceLock<Option<Arc<AuditLog>>>,
    /// The last scan of the trail and when it was made: however many tabs poll, the trail is
    /// read at most once per `SCAN_REUSE`.
    scanned: Mutex<Option<(Instant, Arc<activity::Activity>)>>,
}

const SCAN_REUSE: Duration = Duration::from_secs(2);

fn err(status: StatusCode, reason: impl Into<String>) -> Reply {
    (status, json!({ "error": reason.into() }))
}

impl Dashboard {
    /// `key`: the identity key (`None` when it cannot be loaded: chains are still verified,
    /// operator records are not checkpointed).
    pub fn new(
        config: &Config,
        state: &std::path::Path,
        key: Option<ed25519_dalek::SigningKey>,
        trust: TrustStore,
    ) -> Dashboard {
        Dashboard {
            trust,
            audit_dir: config::resolve(state, &config.audit.dir),
            pins_dir: config::resolve(state, &config.pins.dir),
            configured: config
                .servers
                .iter()
                .map(|s| {
                    let t = if s.url.is_empty() {
                        "serve → stdio"
                    } else {
                        "serve → http"
                    };
                    (s.name.clone(), t)
                })
                .collect(),
            fsync: config.audit.fsync,
            key,
            acked: Mutex::new(HashSet::new()),
            log: OnceLock::new(),
            scanned: Mutex::new(None),
        }
    }

    fn activity(&self) -> Arc<activity::Activity> {
        let mut last = self.scanned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, a)) = last.as_ref() {
            if at.elapsed() < SCAN_REUSE {
                return Arc::clone(a);
            }
        }
        let a = Arc::new(activity::scan(&self.audit_dir, SystemTime::now()));
        *last = Some((Instant::now(), Arc::clone(&a)));
        a
    }

    pub(super) fn pins(&self) -> PinStore {
        PinStore::new(&self.pins_dir)
    }

    /// Writes one operator action, durably, before the action is answered. `Err`: the action
    /// must not be reported as done (fail closed, as everywhere else).
    pub(super) fn audit(
        &self,
        event: &str,
        server: &str,
        item: Option<&str>,
        decision: Decision,
        reason: String,
        detail: Option<Value>,
    ) -> Result<String, String> {
        let log =
            self.log.get_or_init(
                || match AuditLog::open(&self.audit_dir, "admin", self.fsync) {
                    Ok(log) => {
                        if let Some(k) = &self.key {
                            log.set_checkpoints(k.clone(), u64::MAX);
                        }
                        Some(log)
                    }
                    Err(e) => {
                        tracing::error!("admin audit file: {e}");
                        None
                    }
                },
            );
        let Some(log) = log else {
            return Err("the audit trail cannot be opened; nothing was changed".into());
        };
        let mut rec = Record::new("admin", server, Direction::Proxy, 0);
        rec.audit_id = log.next_audit_id("admin");
        rec.event = event.into();
        rec.tool = item.map(str::to_owned);
        rec.decision = decision;
        rec.rule = Some("operator.dashboard".into());
        rec.reason = Some(reason);
        rec.detail = detail;
        let id = rec.audit_id.clone();
        log.write_durable(rec).map_err(|e| {
            format!("the audit record could not be written ({e}); nothing was changed")
        })?;
        // Signed at once: an operator action should not wait for the next record to be covered.
        log.checkpoint_now();
        if let Err(e) = log.flush() {
            tracing::warn!("admin audit checkpoint: {e}");
        }
        Ok(id)
    }
}

/// Routes the dashboard's endpoints; `None`: not one of them.
pub async fn route(d: &Arc<Dashboard>, method: &Method, segments: &[&str]) -> Option<Reply> {
    let owned: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
    let d = Arc::clone(d);
    let work: Box<dyn FnOnce() -> Reply + Send> = match (method, segments) {
        (&Method::GET, ["api", "v1", "overview"]) => Box::new(move || overview(&d)),
        (&Method::GET, ["api", "v1", "pins"]) => Box::new(move || super::pins_api::held(&d)),
        (&Method::POST, ["api", "v1", "pins", _, "approve" | "keep", _]) => {
            Box::new(move || super::pins_api::decide(&d, &owned[3], &owned[4], &owned[5]))
        }
        (&Method::GET, ["api", "v1", "audit", "files"]) => {
            Box::new(move || super::verify_api::files(&d))
        }
        (&Method::GET, ["api", "v1", "alerts", "trail"]) => Box::new(move || alerts(&d)),
        (&Method::POST, ["api", "v1", "alerts", _, "ack"]) => Box::new(move || ack(&d, &owned[3])),
        (_, ["api", "v1", "overview" | "pins"])
        | (_, ["api", "v1", "pins", _, "approve" | "keep", _])
        | (_, ["api", "v1", "audit", "files"])
        | (_, ["api", "v1", "alerts", "trail"])
        | (_, ["api", "v1", "alerts", _, "ack"]) => {
            return Some(err(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"))
        }
        _ => return None,
    };
    Some(
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    )
}

/// `%XX` decoded; `None` for a bad escape or bytes that are not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The base server of a pin store name (`echo@2026-07-28` → `echo`).
fn base(name: &str) -> &str {
    name.split(crate::pins::variant::SEPARATOR)
        .next()
        .unwrap_or(name)
}

/// Pinned tools, drifted (changed since pinned) and held (kept from clients) items of `server`,
/// over all its variants.
fn pin_counts(store: &PinStore, names: &[String], server: &str) -> Value {
    let (mut pinned, mut drifted, mut held, mut errors) = (0usize, 0usize, 0usize, Vec::new());
    for name in names.iter().filter(|n| base(n) == server) {
        match store.read(name) {
            Ok(snap) => {
                if let Some(raw) = &snap.pin {
                    match crate::pins::PinFile::from_value(raw, &snap.paths.pin) {
                        Ok(p) => {
                            pinned += p.section(crate::pins::Kind::Tool).map_or(0, |s| s.len())
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                for (_, _, item) in snap.held.iter().flat_map(|h| h.iter()) {
                    if item.reason == crate::pins::held::HeldReason::Changed {
                        drifted += 1;
                    }
                    if !item.exposed {
                        held += 1;
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    json!({ "pinned": pinned, "drifted": drifted, "held": held, "errors": errors })
}

/// The Servers page: every server this state dir knows of (configured here, scored, pinned, or
/// in the last 24 h of the trail).
fn overview(d: &Dashboard) -> Reply {
    let act = d.activity();
    let trust_store = d.trust.clone();
    let pins = d.pins();
    let pin_names = pins.servers().unwrap_or_default();
    let mut names: BTreeSet<String> = d.configured.iter().map(|(n, _)| n.clone()).collect();
    names.extend(trust_store.servers().unwrap_or_default());
    names.extend(pin_names.iter().map(|n| base(n).to_owned()));
    names.extend(act.servers.keys().cloned());
    names.remove("admin");
    let now = now_secs();
    let servers: Vec<Value> = names
        .iter()
        .map(|name| {
            let transport = d
                .configured
                .iter()
                .find(|(n, _)| n == name)
                .map_or("wrap (stdio)", |(_, t)| *t);
            let a = act.servers.get(name).cloned().unwrap_or_default();
            let trust = match trust::report(&trust_store, name, now) {
                Ok(r) => serde_json::to_value(r).unwrap_or(Value::Null),
                Err(e) => json!({ "error": e.to_string() }),
            };
            json!({
                "name": name,
                "transport": transport,
                "era": a.era,
                "last_seen": a.last_seen,
                "pins": pin_counts(&pins, &pin_names, name),
                "trust": trust,
                "hourly": { "calls": a.calls, "denials": a.denials },
            })
        })
        .collect();
    (
        StatusCode::OK,
        json!({ "servers": servers, "window_truncated": act.truncated }),
    )
}

/// How serious an alert is. The record carries no severity of its own, so it is read from the
/// event: forged or unauthenticated control actions and a broken trail are critical; poisoned or
/// injected content high; drift and redacted secrets medium; the rest low.
pub fn severity(event: &str) -> &'static str {
    if event == "approval.forged" || event.starts_with("control.") || event.starts_with("audit.") {
        "critical"
    } else if event.contains("poison")
        || event.contains("injection")
        || event.contains("atpa")
        || event.contains("proxy_state")
        || event.contains("phishing")
    {
        "high"
    } else if event.starts_with("pins.")
        || event.starts_with("capability.")
        || event.starts_with("dlp.")
    {
        "medium"
    } else {
        "low"
    }
}

fn alerts(d: &Dashboard) -> Reply {
    let act = d.activity();
    let acked = d.acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let list: Vec<Value> = act
        .alerts
        .iter()
        .rev()
        .map(|r| {
            let id = r["audit_id"].as_str().unwrap_or_default().to_owned();
            let event = r["event"].as_str().unwrap_or_default();
            json!({
                "audit_id": id,
                "ts": r["ts"],
                "server": r["server"],
                "event": event,
                "severity": severity(event),
                "tool": r["tool"],
                "rule": r["rule"],
                "reason": r["reason"],
                "decision": r["decision"],
                "acknowledged": acked.contains(&id) || act.acked.contains(&id),
            })
        })
        .collect();
    (StatusCode::OK, Value::Array(list))
}

fn ack(d: &Dashboard, id: &str) -> Reply {
    let Some(id) = percent_decode(id).filter(|i| !i.is_empty() && i.len() <= 200) else {
        return err(StatusCode::BAD_REQUEST, "not an audit id");
    };
    let known = d
        .activity()
        .alerts
        .iter()
        .any(|r| r["audit_id"] == id.as_str());
    if !known {
        return err(
            StatusCode::NOT_FOUND,
            format!("no alert {id:?} in the last 24 h"),
        );
    }
    if let Err(e) = d.audit(
        "alert.acknowledged",
        "",
        None,
        Decision::Allow,
        format!("alert {id} acknowledged on the dashboard"),
        // Read back by `activity.rs`: acknowledgements live in the trail, so they survive a
        // restart and every admin port sharing the state dir sees them.
        Some(json!({ "alert": id })),
    ) {
        return err(StatusCode::SERVICE_UNAVAILABLE, e);
    }
    d.acked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone());
    (
        StatusCode::OK,
        json!({ "audit_id": id, "acknowledged": true }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%E2%80%8B").as_deref(), Some("\u{200b}"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%f"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn severities() {
        assert_eq!(severity("approval.forged"), "critical");
        assert_eq!(severity("content.atpa"), "high");
        assert_eq!(severity("capability.drift"), "medium");
        assert_eq!(severity("rate.limited"), "low");
        assert_eq!(base("echo@2026-07-28+sampling"), "echo");
    }
}
