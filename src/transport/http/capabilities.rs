//! `GET /.well-known/mcp/capabilities` (SPEC §4 "Server identity"): where a client learns the
//! key that signs a server's responses (for trust on first use) and the tool definitions an
//! operator pinned for it.
//!
//! Served per route at `ROUTE/.well-known/mcp/capabilities` (e.g. `/mcp/fs/.well-known/…`), and
//! at the root when exactly one server is configured: with several, the root cannot know which
//! server is meant, so it answers 404 naming the per-route paths (`connect` asks the
//! route-relative path first, then the root).
//!
//! In `signatures.mode = "enforce"` the request must carry a valid header signature for the
//! route, like every MCP request: the document lists the tools, and an unauthenticated caller
//! must not learn which tools exist (ARCHITECTURE invariant).

use std::collections::BTreeSet;
use std::path::PathBuf;

use hyper::header::{HeaderMap, HeaderValue, ALLOW, CACHE_CONTROL};
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::body::OutBody;
use super::post::signature;
use super::status::{self, EdgeRefusal};
use super::{Route, Shared};
use crate::pins::PinStore;
use crate::sig::keys::{kid_of, public_key_to_string};
use crate::sig::outcome::Outcome as SigOutcome;
use crate::sig::verifier::Mode;

pub const WELL_KNOWN: &str = "/.well-known/mcp/capabilities";

/// Answer a request whose path ends in [`WELL_KNOWN`]; `prefix` is the path before it.
pub async fn answer(
    shared: &Shared,
    prefix: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response<OutBody> {
    if method != Method::GET {
        let mut r = status::empty(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    let route = match pick(shared, prefix) {
        Ok(r) => r,
        Err(msg) => return status::text(StatusCode::NOT_FOUND, &msg),
    };
    if let Err(r) = authorized(shared, &route, headers) {
        return r;
    }
    let pins_dir = shared.pins_dir.clone();
    let name = route.name.clone();
    let pinned = tokio::task::spawn_blocking(move || pinned(pins_dir, &name))
        .await
        .unwrap_or_else(|_| Err("the pin file reader failed".into()));
    let (tools, attestation) = match pinned {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("capabilities of {}: {e}", route.name);
            return status::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the pin file of this server cannot be read",
            );
        }
    };
    let key = shared.identity.as_ref();
    let doc = json!({
        "server": {
            "name": route.name,
            // The proxy is what answers and signs at this address.
            "version": env!("CARGO_PKG_VERSION"),
            "public_key": key.map(public_key_to_string),
            "kid": key.map(kid_of),
        },
        "capabilities": tools,
        "attestation": attestation,
    });
    let mut r = status::json(StatusCode::OK, doc.to_string());
    // Pins change on approval: a cached copy would hide that.
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The route a capabilities path names.
fn pick(shared: &Shared, prefix: &str) -> Result<std::sync::Arc<Route>, String> {
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        return shared
            .routes
            .get(prefix)
            .cloned()
            .ok_or_else(|| "no MCP server is served at this path".to_owned());
    }
    let names: BTreeSet<&str> = shared.routes.values().map(|r| r.name.as_str()).collect();
    if names.len() == 1 {
        if let Some(r) = shared.routes.values().next() {
            return Ok(r.clone());
        }
    }
    let mut paths: Vec<String> = shared
        .routes
        .keys()
        .map(|p| format!("{p}{WELL_KNOWN}"))
        .collect();
    paths.sort();
    Err(format!(
        "several MCP servers are served here; ask one of: {}",
        paths.join(", ")
    ))
}

/// Enforce mode: a valid header signature for this route, else 401 (audited like any refusal).
fn authorized(
    shared: &Shared,
    route: &Route,
    headers: &HeaderMap,
) -> Result<(), Response<OutBody>> {
    let enforce = route
        .guards
        .verifier
        .as_ref()
        .is_some_and(|v| v.mode() == Mode::Enforce);
    if !enforce {
        return Ok(());
    }
    let outcome =
        signature(route, headers, b"").map_err(|r| r.answer(shared, &route.name, "", 0))?;
    let (event, reason, code) = match outcome {
        Some(SigOutcome::Valid { .. }) => return Ok(()),
        None => (
            "auth.signature_missing",
            "signatures are enforced: sign the capabilities request (X-MCP-* headers)".to_owned(),
            crate::errors::SIGNATURE_INVALID,
        ),
        Some(o) => (
            o.audit_event(Mode::Enforce)
                .unwrap_or("auth.signature_invalid"),
            o.reason(),
            o.code().map_or(crate::errors::SIGNATURE_INVALID, i64::from),
        ),
    };
    Err(EdgeRefusal::new(
        StatusCode::UNAUTHORIZED,
        event,
        "signatures.enforce",
        reason,
    )
    .code(code)
    .alert()
    .answer(shared, &route.name, "", 0))
}

/// The pinned tool definitions (name order) and the pin file's attestation. No pin file yet:
/// nothing pinned, no attestation.
fn pinned(dir: PathBuf, server: &str) -> Result<(Vec<Value>, Value), String> {
    let snap = PinStore::new(dir).read(server).map_err(|e| e.to_string())?;
    let Some(pin) = snap.pin else {
        return Ok((Vec::new(), Value::Null));
    };
    let tools = pin
        .get("tools")
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter_map(|p| p.get("definition").cloned())
                .collect()
        })
        .unwrap_or_default();
    let attestation = pin.get("attestation").cloned().unwrap_or(Value::Null);
    Ok((tools, attestation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_reads_definitions_and_attestation() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            pinned(dir.path().into(), "fs").unwrap(),
            (vec![], Value::Null)
        );
        let def = json!({"name":"read","inputSchema":{"type":"object"}});
        let file = json!({"server":"fs","origin":{"url":"http://x"},"created":"t","updated":"t",
            "tools":{"read":{"sha256":crate::pins::file::digest(&def).unwrap(),"definition":def}},
            "attestation":{"kid":"k","ts":1,"sig":"s"}});
        std::fs::write(dir.path().join("fs.json"), file.to_string()).unwrap();
        let (tools, att) = pinned(dir.path().into(), "fs").unwrap();
        assert_eq!(tools, vec![def]);
        assert_eq!(att["kid"], "k");
    }
}
