//! The modern era (2026-07-28): stateless POSTs. `Mcp-Method` and `Mcp-Name` must say what the
//! body says (intermediaries route on them: a mismatch is a smuggling attempt → 400, -32020).
//! Each request gets a pipeline of its own and, for a stdio server, a process of its own from
//! the pool; a client that disconnects before its answer cancels the request upstream.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};

use super::admission::{self, Opening};
use super::body::{cpu, OutBody};
use super::post;
use super::prefetch;
use super::relay::Relay;
use super::signer::Egress;
use super::slots::Slot;
use super::status::{self, accepts_sse, collect_json, sse_response, EdgeRefusal, HEADER_MISMATCH};
use super::stdio_upstream::StdioSession;
use super::{Route, Shared, Upstream};
use crate::audit::{Decision, Direction, Record};
use crate::codec::{self, Decoded, Facts, Id};
use crate::pipeline::Pipeline;

/// Methods whose target (`params.name` / `params.uri`) must be mirrored in `Mcp-Name`.
const NAMED: &[&str] = &["tools/call", "resources/read", "prompts/get"];

pub async fn handle(
    shared: Arc<Shared>,
    route: Arc<Route>,
    headers: HeaderMap,
    body: Incoming,
    client: IpAddr,
) -> Response<OutBody> {
    let body = match post::read_body(&shared, &route, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Admission as for a session: a stdio server's process per request counts against the
    // client's cap for as long as it runs.
    let proof = admission::prove(&route, &headers, &body)
        .await
        .and_then(|proof| {
            let slot = match &route.upstream {
                Upstream::Stdio(_) => Some(admission::admit_new(
                    &shared,
                    &proof,
                    client,
                    Opening::Process,
                )?),
                Upstream::Http(_) => admission::check(&proof).map(|()| None)?,
            };
            Ok((proof, slot))
        });
    let (proof, process_slot) = match proof {
        Ok(p) => p,
        Err(r) => {
            return r
                .about(&body)
                .answer(&shared, &route.name, "", body.len() as u64)
        }
    };
    let (h, b, limits) = (headers.clone(), body.clone(), shared.limits);
    let checked = cpu(body.len(), move || check_headers(&h, &b, &limits)).await;
    if let Err(reason) = checked {
        return EdgeRefusal::new(
            StatusCode::BAD_REQUEST,
            "http.header_mismatch",
            "mcp_headers",
            reason,
        )
        .code(HEADER_MISMATCH)
        .alert()
        .about(&body)
        .answer(&shared, &route.name, "", body.len() as u64);
    }
    let p = Arc::new(Pipeline::new(
        &route.name,
        shared.limits,
        shared.audit.clone(),
        route.guards.clone(),
    ));
    // Hook (issue 11): approvals asked as an `input_required` round, its state bound to the
    // verified key (else the route) since no session outlives the request.
    p.ask_stateless(match proof.kid() {
        Some(kid) => format!("{}\nkey {kid}", route.name),
        None => format!("{}\nunsigned", route.name),
    });
    if let Upstream::Http(up) = &route.upstream {
        // A call before any listing in its variant: the proxy lists first (prefetch.rs).
        prefetch::before_call(
            &p,
            up,
            &headers,
            &body,
            shared.limits.max_message_bytes,
            shared.body_timeout,
        )
        .await;
    }
    // The same for a stdio server: the request's own process answers the proxy's listing
    // first, then takes the call.
    let mut early: Option<Arc<StdioSession>> = None;
    if let Upstream::Stdio(pool) = &route.upstream {
        if let Some(request) = p.prefetch_request(&body) {
            let started =
                StdioSession::spawn(pool, &p, Egress::of(&route), shared.grace, || {}).await;
            if let Ok(s) = started {
                if s.send(&request).is_ok() {
                    let waiting = p.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        waiting.await_prefetch(crate::pipeline::PREFETCH_WAIT)
                    })
                    .await;
                }
                early = Some(s);
            }
        }
    }
    let (forward, answer) = post::judge(&p, body, proof.outcome, &headers).await;
    let Some(forward) = forward else {
        return post::refused(answer);
    };
    match &route.upstream {
        Upstream::Stdio(pool) => {
            let peeks = codec::facts_all(&forward);
            if !codec::facts::any_request(&peeks) {
                // A notification to a stateless server: no process would outlive it.
                return status::empty(StatusCode::ACCEPTED);
            }
            let s = match early.take() {
                Some(s) => s,
                None => {
                    match StdioSession::spawn(pool, &p, Egress::of(&route), shared.grace, || {})
                        .await
                    {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!("cannot start {:?}: {e}", pool.argv().join(" "));
                            return status::text(
                                StatusCode::BAD_GATEWAY,
                                "cannot start the server",
                            );
                        }
                    }
                }
            };
            let slot = accepts_sse(&headers)
                .then(|| shared.stream_slot())
                .flatten();
            let (rx, answered) = s.routes.open_sole(&peeks, slot.is_some());
            let _ = s.send(&forward);
            let guard = Request {
                s,
                peeks,
                answered,
                _slot: process_slot,
            };
            match slot {
                Some(release) => sse_response(
                    OutBody::channel(rx, true)
                        .on_drop(release)
                        .on_drop(move || drop(guard)),
                ),
                None => {
                    let r = collect_json(rx).await;
                    drop(guard);
                    r
                }
            }
        }
        Upstream::Http(up) => {
            // Dropping this future (client gone) drops the upstream request: the upstream
            // sees its connection close, the HTTP form of cancellation.
            let resp = match up.send(Method::POST, &headers, None, forward).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("{e}");
                    return status::text(
                        StatusCode::BAD_GATEWAY,
                        "the upstream server cannot be reached",
                    );
                }
            };
            let relay = Relay {
                pipeline: p,
                upstream: up.clone(),
                session: None,
                max: shared.limits.max_message_bytes,
                egress: Egress::of(&route),
            };
            relay.respond(resp, || shared.stream_slot()).await
        }
    }
}

/// One request's process. Dropped when the answer went out — or when the client went away
/// first: then the server is told `notifications/cancelled` before its stdin closes.
struct Request {
    s: Arc<StdioSession>,
    peeks: Vec<Facts>,
    answered: Arc<AtomicBool>,
    /// The client's cap slot, held while the process runs.
    _slot: Option<Slot<String>>,
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.answered.load(Ordering::Acquire) && self.s.is_alive() {
            for id in self.peeks.iter().filter_map(|p| p.id.as_ref()) {
                self.cancel(id);
            }
        }
        self.s.close();
    }
}

impl Request {
    fn cancel(&self, id: &Id) {
        let line = codec::facts::cancelled(id, "the HTTP client disconnected");
        let p = self.s.pipeline();
        let mut record = Record::new(
            &p.session_id(),
            &p.server,
            Direction::Proxy,
            line.len() as u64,
        );
        record.audit_id = p.audit().next_audit_id(&record.session);
        record.event = "http.client_disconnected".into();
        record.method = Some("notifications/cancelled".into());
        record.id = Some(id.to_string());
        record.decision = Decision::Allow;
        record.reason =
            Some("the client disconnected before the answer: request cancelled upstream".into());
        let _ = self.s.send(&line);
        p.finish(record, Instant::now());
    }
}

/// `Mcp-Method` (every message with a method) and `Mcp-Name` (calls, reads, prompt gets) must be
/// present once and equal the body. A body that does not parse is left to the pipeline, whose
/// -32700 / -32600 answer is more precise.
fn check_headers(headers: &HeaderMap, body: &[u8], limits: &codec::Limits) -> Result<(), String> {
    let Ok(Decoded::Single(env)) = codec::decode(body, limits) else {
        return Ok(());
    };
    let Some(method) = env.method.as_deref() else {
        return Ok(());
    };
    let target = Facts::of(&env).target;
    match header(headers, "mcp-method")? {
        None => return Err("the Mcp-Method header is required in protocol 2026-07-28".into()),
        Some(h) if h != method => {
            return Err(format!(
                "Mcp-Method {h:?} does not match the body's method {method:?}"
            ))
        }
        Some(_) => {}
    }
    let name = header(headers, "mcp-name")?;
    match (name, target) {
        (None, Some(_)) if NAMED.contains(&method) => {
            Err(format!("the Mcp-Name header is required for {method}"))
        }
        (Some(h), t) if t.as_deref() != Some(h.as_str()) => Err(format!(
            "Mcp-Name {h:?} does not match the body's {:?}",
            t.unwrap_or_default()
        )),
        _ => Ok(()),
    }
}

/// A header given at most once, decoded (`=?base64?…?=` carries values that are not ASCII).
fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, String> {
    let mut all = headers.get_all(name).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(format!("the {name} header appears more than once"));
    }
    let text = v
        .to_str()
        .map_err(|_| format!("the {name} header is not ASCII; base64-encode it"))?;
    let Some(inner) = text
        .strip_prefix("=?base64?")
        .and_then(|t| t.strip_suffix("?="))
    else {
        return Ok(Some(text.to_owned()));
    };
    base64::engine::general_purpose::STANDARD
        .decode(inner)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| format!("the {name} header is not valid base64 UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn check(pairs: &[(&'static str, &str)], body: &str) -> Result<(), String> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        check_headers(&h, body.as_bytes(), &codec::Limits::default())
    }

    #[test]
    fn headers_must_mirror_the_body() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        assert!(check(&[("mcp-method", "tools/call"), ("mcp-name", "echo")], call).is_ok());
        assert!(check(&[("mcp-method", "tools/call"), ("mcp-name", "rm")], call).is_err());
        assert!(check(&[("mcp-method", "tools/list"), ("mcp-name", "echo")], call).is_err());
        assert!(check(&[("mcp-name", "echo")], call).is_err());
        assert!(check(&[("mcp-method", "tools/call")], call).is_err());
        let b64 = [
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ];
        assert!(check(&b64, call).is_ok());
        let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(check(&[("mcp-method", "tools/list")], list).is_ok());
        assert!(check(&[], "not json").is_ok(), "left to the pipeline");
    }
}
