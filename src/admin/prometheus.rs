//! `/metrics` in the Prometheus text exposition format, version 0.0.4.

use std::fmt::Write as _;

use super::metrics::{Histogram, Metrics};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label values escape backslash, double quote and newline (the format's only escapes).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Go-style float text: `+Inf`, and no exponent surprises for the bucket bounds.
fn float(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let (buckets, sum, count) = h.snapshot();
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (bound, cumulative) in buckets {
        let le = bound.map_or_else(|| "+Inf".to_owned(), float);
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum {}", float(sum));
    let _ = writeln!(out, "{name}_count {count}");
}

/// The whole exposition. `trust` is `(server, score)`, read by the caller from the trust store.
pub fn render(m: &Metrics, trust: &[(String, f64)]) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP mcp_warden_messages_total Messages that crossed the proxy, by direction, method and decision.\n");
    out.push_str("# TYPE mcp_warden_messages_total counter\n");
    for ((direction, method, decision), n) in m.messages() {
        let _ = writeln!(
            out,
            "mcp_warden_messages_total{{direction=\"{direction}\",method=\"{}\",decision=\"{decision}\"}} {n}",
            escape(&method)
        );
    }
    histogram(
        &mut out,
        "mcp_warden_decision_latency_seconds",
        "Time the proxy spent deciding on one message.",
        &m.decision_latency,
    );
    histogram(
        &mut out,
        "mcp_warden_upstream_latency_seconds",
        "Time the upstream server took to answer one request.",
        &m.upstream_latency,
    );
    out.push_str("# HELP mcp_warden_inference_requests_total Sampling requests routed to the inference backend, by outcome.\n");
    out.push_str("# TYPE mcp_warden_inference_requests_total counter\n");
    for (outcome, n) in m.inference_outcomes() {
        let _ = writeln!(
            out,
            "mcp_warden_inference_requests_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    let (prompt, completion) = m.inference_tokens();
    out.push_str(
        "# HELP mcp_warden_inference_tokens_total Tokens the inference backend reported.\n",
    );
    out.push_str("# TYPE mcp_warden_inference_tokens_total counter\n");
    let _ = writeln!(
        out,
        "mcp_warden_inference_tokens_total{{kind=\"prompt\"}} {prompt}"
    );
    let _ = writeln!(
        out,
        "mcp_warden_inference_tokens_total{{kind=\"completion\"}} {completion}"
    );
    histogram(
        &mut out,
        "mcp_warden_inference_latency_seconds",
        "Time a routed sampling request took, the backend's answer included.",
        &m.inference_latency,
    );
    out.push_str("# HELP mcp_warden_alerts_total Security alerts raised.\n");
    out.push_str("# TYPE mcp_warden_alerts_total counter\n");
    let _ = writeln!(out, "mcp_warden_alerts_total {}", m.alerts_total());
    out.push_str("# HELP mcp_warden_approvals_total Approval outcomes by channel (client elicitation, input_required, queue).\n");
    out.push_str("# TYPE mcp_warden_approvals_total counter\n");
    for ((channel, outcome), n) in m.approvals() {
        let _ = writeln!(
            out,
            "mcp_warden_approvals_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    out.push_str("# HELP mcp_warden_trust_score Trust score of each server, 0..1.\n");
    out.push_str("# TYPE mcp_warden_trust_score gauge\n");
    for (server, score) in trust {
        let _ = writeln!(
            out,
            "mcp_warden_trust_score{{server=\"{}\"}} {}",
            escape(server),
            float(*score)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Decision, Direction, Record};

    #[test]
    fn exposition_lines() {
        let m = Metrics::new();
        let mut r = Record::new("s", "fs", Direction::ServerToClient, 1);
        r.method = Some("tools/list".into());
        r.decision = Decision::Allow;
        r.latency_us = Some(30);
        m.record(&r);
        let text = render(&m, &[("a\"b".into(), 0.5)]);
        assert!(text.contains(
            "mcp_warden_messages_total{direction=\"server_to_client\",method=\"tools/list\",decision=\"allow\"} 1\n"
        ));
        assert!(text.contains("mcp_warden_decision_latency_seconds_bucket{le=\"0.00005\"} 1\n"));
        assert!(text.contains("mcp_warden_decision_latency_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("mcp_warden_decision_latency_seconds_count 1\n"));
        assert!(text.contains("mcp_warden_trust_score{server=\"a\\\"b\"} 0.5\n"));
        assert!(text.contains("mcp_warden_alerts_total 0\n"));
        assert!(text.contains("mcp_warden_inference_requests_total{outcome=\"completed\"} 0\n"));
        assert!(text.contains("mcp_warden_inference_tokens_total{kind=\"completion\"} 0\n"));
    }
}
