//! Step: requests a server sends to the client (sampling, elicitation, roots). A server is the
//! party we trust least, and these requests spend the user's model, attention and file list, so
//! before one reaches the client:
//!
//! 1. its method name is well formed (a look-alike could be dispatched as the real one);
//! 2. the client declared the capability it needs in `initialize` (or the modern era's
//!    per-request client capabilities) — the spec forbids sending anything else, and a client
//!    that never asked for sampling must not be made to sample;
//! 3. it is within the per-server rate for its method (a loop of sampling requests costs money);
//! 4. an elicitation's `requestedSchema` is the flat object of primitives the spec allows.
//!
//! A refusal is answered to the server; the client never sees the request.

use std::time::Duration;

use serde_json::Value;

use super::elicit_schema::check_requested_schema;
use super::method_step::check_method;
use super::Pipeline;
use crate::codec::Envelope;
use crate::errors::{Rejection, Source, INVALID_PARAMS, METHOD_NOT_FOUND, RATE_LIMITED};
use crate::policy::{Rate, RateDecision};
use crate::session::{ClientCaps, Session};

/// Default ceiling on server-initiated requests of one method, per server: generous for an
/// agent loop, far below a flood. Each of these waits on a model or a person.
pub const SERVER_REQUESTS_PER_MINUTE: u32 = 60;

impl Pipeline {
    /// Checks 1–4 for one server request; `Err` is answered to the server.
    pub(super) fn check_server_request(
        &self,
        s: &Session,
        env: &Envelope,
    ) -> Result<(), Rejection> {
        let method = env.method();
        check_method(method).map_err(|r| r.from(Source::Upstream))?;
        let params: Option<Value> = env.params.and_then(|p| serde_json::from_str(p.get()).ok());
        if let Some(missing) = undeclared(s.client_caps.as_ref(), method, params.as_ref()) {
            return Err(super::short(Rejection::new(
                METHOD_NOT_FOUND,
                "server_request.undeclared_capability",
                "capability.undeclared",
                format!("the client did not declare {missing} in its capabilities; {method} is not forwarded"),
            )
            .from(Source::Upstream)
            .alert(), format!("Method not found: the client did not declare {missing}")));
        }
        if method != "ping" {
            self.server_request_rate(method)?;
        }
        if method == "elicitation/create" {
            let schema = params.as_ref().and_then(|p| p.get("requestedSchema"));
            let url_mode = params
                .as_ref()
                .and_then(|p| p.get("mode"))
                .and_then(Value::as_str)
                == Some("url");
            if !url_mode {
                check_requested_schema(schema).map_err(|why| {
                    super::short(Rejection::new(
                        INVALID_PARAMS,
                        "elicitation.schema_refused",
                        "elicitation.requested_schema",
                        format!("requestedSchema must be a flat object of string, number, integer, boolean or enum properties: {why}"),
                    )
                    .from(Source::Upstream)
                    .alert(), "Invalid params: requestedSchema is not a flat object of primitives")
                })?;
            }
        }
        Ok(())
    }

    /// Check 3: the per-server rate of one server-initiated method. Also applies to sampling
    /// the backend answers (each costs backend time).
    pub(super) fn server_request_rate(&self, method: &str) -> Result<(), Rejection> {
        let rate = Rate {
            count: SERVER_REQUESTS_PER_MINUTE,
            per: Duration::from_secs(60),
        };
        if let RateDecision::Limited { retry_after_ms } =
            self.guards
                .limiter
                .check("server-initiated", &self.server, method, rate)
        {
            return Err(super::short(Rejection::new(
                RATE_LIMITED,
                "ratelimit.server_request",
                "server_requests.rate",
                format!("more than {SERVER_REQUESTS_PER_MINUTE} {method} requests per minute from server {}; retry in {retry_after_ms} ms", self.server),
            )
            .with_extra("retry_after_ms", Value::from(retry_after_ms))
            .from(Source::Upstream)
            .alert(), format!("Rate limited: too many {method} requests; retry in {retry_after_ms} ms")));
        }
        Ok(())
    }
}

/// Modern era: an `input_required` result asks the client, through `inputRequests`, for the
/// same things a legacy server request would; each must be something the client declared.
/// Returns the refusal for the first that is not.
pub(super) fn undeclared_input_request(
    caps: Option<&ClientCaps>,
    result: Option<&serde_json::value::RawValue>,
) -> Option<Rejection> {
    let result: Value = serde_json::from_str(result?.get()).ok()?;
    let requests = result.get("inputRequests")?.as_object()?;
    for (key, req) in requests {
        let method = req.get("method").and_then(Value::as_str).unwrap_or("");
        if let Some(missing) = undeclared(caps, method, req.get("params")) {
            return Some(super::short(
                Rejection::new(
                    crate::errors::INTERNAL_ERROR,
                    "server_request.undeclared_capability",
                    "capability.undeclared",
                    format!("the server's input request {key:?} ({method}) needs {missing}, which the client did not declare in its capabilities; the result was not forwarded"),
                )
                .from(Source::Upstream)
                .alert(),
                format!("Input request needs {missing}, which the client did not declare"),
            ));
        }
    }
    None
}

/// The capability `method` needs that `caps` lacks, if any. Methods no capability governs
/// (ping, vendor extensions) need none.
pub(super) fn undeclared(
    caps: Option<&ClientCaps>,
    method: &str,
    params: Option<&Value>,
) -> Option<&'static str> {
    let none = ClientCaps::default();
    let caps = caps.unwrap_or(&none);
    match method {
        "sampling/createMessage" if !caps.sampling => Some("sampling"),
        "sampling/createMessage"
            if !caps.sampling_tools && params.is_some_and(|p| p.get("tools").is_some()) =>
        {
            Some("sampling.tools")
        }
        "elicitation/create" => {
            let url = params.and_then(|p| p.get("mode")).and_then(Value::as_str) == Some("url");
            match (url, caps.elicitation_form, caps.elicitation_url) {
                (true, _, false) => Some("elicitation.url"),
                (false, false, _) => Some("elicitation (form mode)"),
                _ => None,
            }
        }
        "roots/list" if !caps.roots => Some("roots"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_declared_capabilities_pass() {
        let none = ClientCaps::from_json(&json!({}));
        for m in ["sampling/createMessage", "elicitation/create", "roots/list"] {
            assert!(undeclared(Some(&none), m, None).is_some(), "{m}");
            assert!(undeclared(None, m, None).is_some(), "{m}");
        }
        assert_eq!(undeclared(Some(&none), "ping", None), None);
        let all = ClientCaps::from_json(
            &json!({"sampling":{},"elicitation":{},"roots":{"listChanged":true}}),
        );
        for m in ["sampling/createMessage", "elicitation/create", "roots/list"] {
            assert_eq!(undeclared(Some(&all), m, None), None, "{m}");
        }
        // `elicitation: {}` is form only; URL mode must be declared by name.
        let url = json!({"mode": "url", "url": "https://x", "message": "m", "elicitationId": "1"});
        assert_eq!(
            undeclared(Some(&all), "elicitation/create", Some(&url)),
            Some("elicitation.url")
        );
        let tools = json!({"messages": [], "maxTokens": 1, "tools": []});
        assert_eq!(
            undeclared(Some(&all), "sampling/createMessage", Some(&tools)),
            Some("sampling.tools")
        );
        let url_only = ClientCaps::from_json(&json!({"elicitation":{"url":{}}}));
        assert!(undeclared(Some(&url_only), "elicitation/create", None).is_some());
        assert_eq!(
            undeclared(Some(&url_only), "elicitation/create", Some(&url)),
            None
        );
    }
}
