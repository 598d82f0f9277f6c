//! `mcp-warden pins list | diff | approve | sign | verify`: each returns the text to print, or a
//! `PinError` whose message is the one-line reason for a non-zero exit.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::pins::drift;
use crate::pins::error::PinError;
use crate::pins::file::{Kind, PinFile, Pinned};
use crate::pins::held::{HeldItem, HeldReason};
use crate::pins::store::{PinStore, Snapshot};
use crate::sig::{attestation, kid_of, SigningKey, TrustedKeys};

/// One row of `pins list --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinSummary {
    pub server: String,
    pub file: String,
    /// Number of pinned tools.
    pub tools: usize,
    /// Held items: tool names as is, other kinds as `prompt:NAME` / `resource_template:URI`.
    pub held: Vec<String>,
    /// The file carries an attestation (`pins verify` checks it against the trusted keys).
    pub signed: bool,
    /// Set when the server's files cannot be read; the other rows are still listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn list(store: &PinStore) -> Result<Vec<PinSummary>, PinError> {
    let mut rows = Vec::new();
    for server in store.servers()? {
        let file = store.paths(&server)?.pin.display().to_string();
        let mut row = PinSummary {
            server: server.clone(),
            file,
            tools: 0,
            held: Vec::new(),
            signed: false,
            error: None,
        };
        match store
            .read(&server)
            .and_then(|snap| parsed(&snap, &server).map(|pin| (snap, pin)))
        {
            Ok((snap, pin)) => {
                if let Some(pin) = pin {
                    row.tools = pin.section(Kind::Tool).map_or(0, |s| s.len());
                    row.signed = pin.is_signed();
                }
                row.held = snap
                    .held
                    .iter()
                    .flat_map(|h| h.iter())
                    .map(|(kind, key, _)| held_label(kind, key))
                    .collect();
            }
            Err(e) => row.error = Some(e.to_string()),
        }
        rows.push(row);
    }
    Ok(rows)
}

pub fn render_list(rows: &[PinSummary], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into()) + "\n";
    }
    if rows.is_empty() {
        return "no pins yet\n".into();
    }
    let width = rows
        .iter()
        .map(|r| r.server.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!("{:width$}  TOOLS  SIGNED  HELD  FILE\n", "SERVER");
    for r in rows {
        out.push_str(&format!(
            "{:width$}  {:>5}  {:6}  {:>4}  {}\n",
            r.server,
            r.tools,
            if r.signed { "yes" } else { "no" },
            r.held.len(),
            r.file
        ));
        if !r.held.is_empty() {
            out.push_str(&format!("{:width$}  held: {}\n", "", r.held.join(", ")));
        }
        if let Some(e) = &r.error {
            out.push_str(&format!("{:width$}  error: {e}\n", ""));
        }
    }
    out
}

/// What is held for `server`, each against its pinned definition.
pub fn diff(store: &PinStore, server: &str) -> Result<String, PinError> {
    let snap = store.read(server)?;
    let pin = parsed(&snap, server)?;
    let held: Vec<_> = snap.held.iter().flat_map(|h| h.iter()).collect();
    if pin.is_none() && held.is_empty() {
        return Err(PinError::NoPins(server.to_string()));
    }
    if held.is_empty() {
        return Ok(format!("server {server:?}: nothing held\n"));
    }
    let mut out = String::new();
    for (kind, key, item) in held {
        out.push_str(&describe(kind, key, item));
        match pin.as_ref().and_then(|p| p.get(kind, key)) {
            Some(pinned) => out.push_str(&drift::render(&drift::diff(
                &pinned.definition,
                &item.definition,
            ))),
            None => out.push_str(&drift::render(&[drift::Change {
                path: String::new(),
                old: None,
                new: Some(item.definition.clone()),
            }])),
        }
        for finding in &item.findings {
            out.push_str(&format!("  scanner: {finding}\n"));
        }
    }
    Ok(out)
}

/// Accepts held definitions (all, or those keyed `item`) into the pin file, under the lock.
pub fn approve(
    store: &PinStore,
    server: &str,
    item: Option<&str>,
    now: SystemTime,
) -> Result<String, PinError> {
    store.update(server, |snap| {
        let pin = parsed(snap, server)?;
        let Some(mut held) = snap.held.take() else {
            return match item {
                Some(name) => Err(not_held(server, name)),
                None => Ok(format!("server {server:?}: nothing held to approve\n")),
            };
        };
        let chosen: Vec<(Kind, String)> = held
            .iter()
            .filter(|(_, key, _)| item.is_none_or(|name| name == *key))
            .map(|(kind, key, _)| (kind, key.to_string()))
            .collect();
        if let (Some(name), true) = (item, chosen.is_empty()) {
            return Err(not_held(server, name));
        }
        let mut file = pin.unwrap_or_else(|| PinFile::new(server, held.origin.clone(), now));
        let mut out = String::new();
        for (kind, key) in chosen {
            let Some(entry) = held.release(kind, &key) else {
                continue;
            };
            // The held file is not trusted: the digest is recomputed from the definition.
            let pinned = Pinned::new(entry.definition)?;
            out.push_str(&format!(
                "approved {} {key:?} (sha256 {})\n",
                kind.label(),
                &pinned.sha256[..16]
            ));
            for finding in &entry.findings {
                out.push_str(&format!("  warning, the scanner flagged it: {finding}\n"));
            }
            file.section_mut(kind).insert(key, pinned);
        }
        if file.touch(now) {
            out.push_str(&format!(
                "attestation removed: the pins changed; re-sign with `mcp-warden pins sign {server} --key KEY`\n"
            ));
        }
        snap.pin = Some(file.to_value()?);
        snap.held = Some(held);
        Ok(out)
    })
}

/// Attests the pin file with an operator key (SPEC §5).
pub fn sign(
    store: &PinStore,
    server: &str,
    key: &SigningKey,
    now: SystemTime,
) -> Result<String, PinError> {
    store.update(server, |snap| {
        // Never sign a file whose digests do not match its definitions.
        let pin = parsed(snap, server)?.ok_or_else(|| PinError::NoPins(server.to_string()))?;
        let raw = snap
            .pin
            .as_ref()
            .ok_or_else(|| PinError::NoPins(server.to_string()))?;
        let ts = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let signed = attestation::attest(raw, key, ts).map_err(|source| PinError::Untrusted {
            server: server.to_string(),
            source,
        })?;
        snap.pin = Some(signed);
        let mut out = format!(
            "signed pins for server {server:?} ({} tools) with key {}\n",
            pin.section(Kind::Tool).map_or(0, |s| s.len()),
            kid_of(&key.verifying_key())
        );
        let held = snap.held.as_ref().map_or(0, |h| h.iter().count());
        if held > 0 {
            out.push_str(&format!(
                "note: {held} item(s) still held; see `mcp-warden pins diff {server}`\n"
            ));
        }
        Ok(out)
    })
}

/// Checks digests and the attestation against the trusted operator keys.
pub fn verify(store: &PinStore, server: &str, keys: &TrustedKeys) -> Result<String, PinError> {
    let snap = store.read(server)?;
    let pin = parsed(&snap, server)?.ok_or_else(|| PinError::NoPins(server.to_string()))?;
    let raw = snap.pin.as_ref().unwrap_or(&Value::Null);
    let att = attestation::verify(raw, keys).map_err(|source| PinError::Untrusted {
        server: server.to_string(),
        source,
    })?;
    Ok(format!(
        "pins for server {server:?} verified: {} tools, signed by {} (kid {}) at {}\n",
        pin.section(Kind::Tool).map_or(0, |s| s.len()),
        att.signer,
        att.kid,
        crate::timefmt::rfc3339_micros(
            UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(att.ts).unwrap_or(0))
        )
    ))
}

/// The pin file of `server`. A file that names another server (copied, or a signed file
/// reused) is refused here as the proxy refuses it.
fn parsed(snap: &Snapshot, server: &str) -> Result<Option<PinFile>, PinError> {
    let pin = snap
        .pin
        .as_ref()
        .map(|raw| PinFile::from_value(raw, &snap.paths.pin))
        .transpose()?;
    match pin {
        Some(p) if p.server != server => Err(PinError::WrongServer {
            path: snap.paths.pin.clone(),
            found: p.server,
            wanted: server.to_string(),
        }),
        other => Ok(other),
    }
}

fn held_label(kind: Kind, key: &str) -> String {
    match kind {
        Kind::Tool => key.to_string(),
        Kind::Prompt => format!("prompt:{key}"),
        Kind::ResourceTemplate => format!("resource_template:{key}"),
    }
}

fn describe(kind: Kind, key: &str, item: &HeldItem) -> String {
    let what = match item.reason {
        HeldReason::Changed => "changed since it was pinned",
        HeldReason::New => "new, never approved",
    };
    let state = if item.exposed {
        "exposed (on_drift = alert)"
    } else {
        "held"
    };
    format!(
        "{} {key:?}: {what}; {state} since {} (sha256 {})\n",
        kind.label(),
        item.first_seen,
        item.sha256.get(..16).unwrap_or(&item.sha256)
    )
}

fn not_held(server: &str, name: &str) -> PinError {
    PinError::NotHeld {
        server: server.to_string(),
        name: name.to_string(),
    }
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
