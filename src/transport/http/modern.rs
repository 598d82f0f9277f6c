//! The modern era (2026-07-28): stateless POSTs. `Mcp-Method` and `Mcp-Name` must say what the
//! body says (intermediaries route on them: a mismatch is a smuggling attempt → 400, -32020).
//! Each request gets a pipeline of its own and, for a stdio server, a process of its own from
//! the pool; a client that disconnects before its answer cancels the request upstream.

use std::sync::Arc;

use base64::Engine as _;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use super::admission::{self, Opening};
use super::body::{cpu, OutBody};
use super::post;
use super::status::{EdgeRefusal, HEADER_MISMATCH};
use super::upstream::Exchange;
use crate::codec::{self, Decoded, Facts};
use crate::pipeline::Pipeline;

/// Methods whose target (`params.name` / `params.uri`) must be mirrored in `Mcp-Name`.
const NAMED: &[&str] = &["tools/call", "resources/read", "prompts/get"];

pub async fn handle(posted: post::Posted) -> Response<OutBody> {
    let (shared, route, headers, body, client) = posted.into_parts();
    // Admission as for a session: a stdio server's process per request counts against the
    // client's cap for as long as it runs.
    let proof = admission::prove(&route, &headers, &body)
        .await
        .and_then(|proof| {
            let slot = if route.upstream.spawns_processes() {
                Some(admission::admit_new(
                    &shared,
                    &proof,
                    client,
                    Opening::Process,
                )?)
            } else {
                admission::check(&proof).map(|()| None)?
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
    // A call before any listing in its variant: the proxy lists first (through the upstream,
    // or the request's own process, which then takes the call).
    let ready = route
        .upstream
        .prefetch(&shared, &route, &p, &headers, &body, process_slot)
        .await;
    let judged = post::judge(&p, body, proof.outcome, &headers).await;
    if judged.forward.is_none() {
        return post::refused(judged.answer);
    }
    let exchange = Exchange {
        shared: &shared,
        route: &route,
        pipeline: &p,
        headers: &headers,
    };
    route
        .upstream
        .send_stateless(&exchange, judged, ready)
        .await
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
