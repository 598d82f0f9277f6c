//! The OTLP metrics: the Prometheus series of `/metrics` (messages by direction, method and
//! decision; decision latency; alerts), the MCP conventions' operation-duration histograms, and
//! the exporter's own drops. Recording only updates in-memory aggregates (the SDK's periodic
//! reader exports them on its own thread).

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::KeyValue;
use serde_json::{Map, Value};

use super::spans::Ended;

/// The boundaries the MCP conventions recommend for the operation durations (seconds).
const DURATION_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const DECISION_BOUNDS: [f64; 10] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25,
];

#[derive(Clone)]
pub struct Instruments {
    messages: Counter<u64>,
    alerts: Counter<u64>,
    decision: Histogram<f64>,
    server_op: Histogram<f64>,
    client_op: Histogram<f64>,
    pub dropped: Counter<u64>,
}

impl Instruments {
    pub fn new(meter: &Meter) -> Instruments {
        let seconds = |name: &'static str, what: &'static str, bounds: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(what)
                .with_boundaries(bounds.to_vec())
                .build()
        };
        Instruments {
            messages: meter
                .u64_counter("mcp_warden.messages")
                .with_description("Messages through the proxy by direction, method and decision")
                .build(),
            alerts: meter
                .u64_counter("mcp_warden.alerts")
                .with_description("Audit records flagged as alerts")
                .build(),
            decision: seconds(
                "mcp_warden.decision.duration",
                "Time the proxy took to decide on a message",
                &DECISION_BOUNDS,
            ),
            server_op: seconds(
                "mcp.server.operation.duration",
                "MCP request duration as observed on the receiver (the proxy, for client requests)",
                &DURATION_BOUNDS,
            ),
            client_op: seconds(
                "mcp.client.operation.duration",
                "MCP request duration as observed on the sender (the proxy relaying a server's request)",
                &DURATION_BOUNDS,
            ),
            dropped: meter
                .u64_counter("mcp_warden.telemetry.dropped")
                .with_description("Audit records not exported (queue full or export failed)")
                .build(),
        }
    }

    /// One audit line (checkpoints are not messages).
    pub fn line(&self, rec: &Map<String, Value>) {
        let s = |k: &str| rec.get(k).and_then(Value::as_str);
        if s("event") == Some("checkpoint") || s("direction") == Some("proxy") {
            return;
        }
        let method = crate::admin::metrics::method_label(s("method"));
        self.messages.add(
            1,
            &[
                KeyValue::new("direction", s("direction").unwrap_or("").to_owned()),
                KeyValue::new("method", method),
                KeyValue::new("decision", s("decision").unwrap_or("").to_owned()),
            ],
        );
        if let Some(us) = rec.get("latency_us").and_then(Value::as_u64) {
            self.decision.record(us as f64 / 1e6, &[]);
        }
        if rec.get("alert").and_then(Value::as_bool) == Some(true) {
            self.alerts.add(1, &[]);
        }
    }

    pub fn ended(&self, e: &Ended) {
        let h = if e.receiver {
            &self.server_op
        } else {
            &self.client_op
        };
        h.record(e.seconds, &e.attrs);
    }
}
