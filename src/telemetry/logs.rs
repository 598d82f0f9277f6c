//! An audit line as an OTLP log record: every field an attribute (`audit.<field>`; arguments
//! are only ever their digest, as in the file), severity from the decision, the line's own
//! time, and the trace context of the request's span when it belongs to one.

use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::SpanContext;
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger};
use serde_json::{Map, Value};

pub fn record(
    logger: &SdkLogger,
    rec: &Map<String, Value>,
    ts: SystemTime,
    span: Option<&SpanContext>,
) -> SdkLogRecord {
    let mut out = logger.create_log_record();
    out.set_event_name("mcp_warden.audit");
    out.set_timestamp(ts);
    out.set_observed_timestamp(SystemTime::now());
    let decision = rec.get("decision").and_then(Value::as_str).unwrap_or("");
    let alert = rec.get("alert").and_then(Value::as_bool).unwrap_or(false);
    let (number, text) = severity(decision, alert);
    out.set_severity_number(number);
    out.set_severity_text(text);
    let body = rec
        .get("reason")
        .and_then(Value::as_str)
        .or_else(|| rec.get("event").and_then(Value::as_str))
        .unwrap_or("");
    out.set_body(AnyValue::from(body.to_owned()));
    for (k, v) in rec {
        let value: AnyValue = match v {
            Value::Null => continue,
            Value::Bool(b) => (*b).into(),
            Value::Number(n) => match n.as_i64() {
                Some(i) => i.into(),
                None => n.as_f64().unwrap_or(0.0).into(),
            },
            Value::String(s) => s.clone().into(),
            // `detail` (drift diffs, checkpoint signatures): kept as its JSON text.
            other => other.to_string().into(),
        };
        out.add_attribute(format!("audit.{k}"), value);
    }
    if let Some(ctx) = span {
        out.set_trace_context(ctx.trace_id(), ctx.span_id(), Some(ctx.trace_flags()));
    }
    out
}

/// Allowed traffic is information; a refusal or a change the proxy made is a warning (an
/// alert raises it to an error); the proxy failing is an error.
fn severity(decision: &str, alert: bool) -> (Severity, &'static str) {
    match (decision, alert) {
        ("error", _) | (_, true) => (Severity::Error, "ERROR"),
        ("deny" | "hold" | "redact" | "rewrite", _) => (Severity::Warn, "WARN"),
        _ => (Severity::Info, "INFO"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_the_decision() {
        assert_eq!(severity("allow", false).1, "INFO");
        assert_eq!(severity("deny", false).1, "WARN");
        assert_eq!(severity("deny", true).1, "ERROR");
        assert_eq!(severity("error", false).1, "ERROR");
    }
}
