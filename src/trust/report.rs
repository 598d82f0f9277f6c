//! The score's explanation: `trust SERVER --json` (SPEC §14) and the human tables.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One server's score and its breakdown. Serialises exactly to SPEC §14:
/// `{"server","score","factors":[{"name","value","weight","evidence":{…}}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustReport {
    pub server: String,
    pub score: f64,
    pub factors: Vec<FactorReport>,
}

/// One factor: `value` is `null` when the window holds no data for it; `weight` is the SPEC weight
/// (before renormalisation); `evidence` holds the counts the value was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorReport {
    pub name: String,
    pub value: Option<f64>,
    pub weight: f64,
    pub evidence: Map<String, Value>,
}

impl TrustReport {
    /// Sum of the weights of factors with data: what the score was renormalised over.
    pub fn weight_with_data(&self) -> f64 {
        self.factors
            .iter()
            .filter(|f| f.value.is_some())
            .map(|f| f.weight)
            .sum()
    }

    /// The factor with data pulling the score down the most, for the summary line.
    pub fn weakest(&self) -> Option<&FactorReport> {
        self.factors
            .iter()
            .filter(|f| f.value.is_some())
            .min_by(|a, b| a.value.unwrap_or(1.0).total_cmp(&b.value.unwrap_or(1.0)))
    }

    /// One-line JSON for `trust SERVER --json`.
    pub fn to_json(&self) -> String {
        // Serialising plain maps, strings and finite floats cannot fail; an empty object is a
        // safe answer if it ever did.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// `mcp-warden trust SERVER`: one row per factor, like a dashboard.
pub fn render_table(r: &TrustReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "server  {}", printable(&r.server));
    let _ = writeln!(out, "trust   {:.2}", r.score);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<18} {:>6} {:>7} {:>7}  evidence",
        "factor", "value", "weight", "share"
    );
    let total = r.weight_with_data();
    for f in &r.factors {
        let (value, share) = match f.value {
            Some(v) if total > 0.0 => (
                format!("{v:.2}"),
                format!("{:.0}%", 100.0 * f.weight / total),
            ),
            _ => ("—".to_string(), "—".to_string()),
        };
        let _ = writeln!(
            out,
            "{:<18} {:>6} {:>7.2} {:>7}  {}",
            f.name,
            value,
            f.weight,
            share,
            evidence_line(&f.evidence)
        );
    }
    let with_data = r.factors.iter().filter(|f| f.value.is_some()).count();
    let _ = writeln!(out);
    if with_data == 0 {
        let _ = writeln!(
            out,
            "no observations in the last 30 days: scored as a new server"
        );
    } else {
        let _ = writeln!(
            out,
            "{with_data} of {} factors have data; \"—\" factors are left out and the weights renormalised",
            r.factors.len()
        );
    }
    // How an operator gets back a server that the evidence (or a bad day) pushed down.
    let name = printable(&r.server);
    let _ = writeln!(
        out,
        "recover: fix the cause above, then `mcp-warden feedback {name} +1`, or start over \
         with `mcp-warden trust {name} --reset`; evidence ages out after 30 days. Refusals by \
         the trust gate itself never count against the server."
    );
    out
}

/// `mcp-warden trust` without a server: one line per server, weakest factor named.
pub fn render_summary(reports: &[TrustReport]) -> String {
    if reports.is_empty() {
        return "no trust data yet (servers are scored once the proxy has seen them)\n".to_string();
    }
    let width = reports
        .iter()
        .map(|r| r.server.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>5}  {:>4}  weakest",
        "server", "trust", "data"
    );
    for r in reports {
        let with_data = r.factors.iter().filter(|f| f.value.is_some()).count();
        let weakest = match r.weakest() {
            Some(f) => format!("{} {:.2}", f.name, f.value.unwrap_or(0.0)),
            None => "— (new server)".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>5.2}  {:>4}  {weakest}",
            printable(&r.server),
            r.score,
            format!("{with_data}/{}", r.factors.len()),
        );
    }
    out
}

/// `k=v` pairs in the evidence map's order.
fn evidence_line(evidence: &Map<String, Value>) -> String {
    let parts: Vec<String> = evidence.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(" ")
}

/// A server name with control characters replaced: names reach the terminal, and an escape
/// sequence in one must not repaint it.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::buckets::History;
    use crate::trust::events::{Event, Observation};
    use crate::trust::score::compute;

    const T0: u64 = 1_780_000_000;

    fn sample() -> TrustReport {
        let mut h = History::new("filesystem");
        for o in [
            Observation::CallOk,
            Observation::CallError,
            Observation::Session,
        ] {
            h.apply(&Event::new(T0, o));
        }
        compute(&h, T0)
    }

    #[test]
    fn json_has_exactly_the_spec_shape() {
        let text = sample().to_json();
        assert!(
            text.starts_with(r#"{"server":"filesystem","score":"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{"name":"verification","value":null,"weight":0.25,"evidence":{"#),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        let mut top: Vec<&String> = v.as_object().unwrap().keys().collect();
        top.sort();
        assert_eq!(top, ["factors", "score", "server"]);
        assert_eq!(v["server"], "filesystem");
        assert!(v["score"].is_f64());
        let factors = v["factors"].as_array().unwrap();
        assert_eq!(factors.len(), 8);
        for f in factors {
            let mut keys: Vec<&String> = f.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(keys, ["evidence", "name", "value", "weight"]);
            assert!(f["evidence"].is_object());
        }
        let verification = &factors[0];
        assert_eq!(verification["name"], "verification");
        assert!(
            verification["value"].is_null(),
            "no signatures seen: null, not 0"
        );
        assert_eq!(factors[2]["name"], "success");
        assert_eq!(factors[2]["evidence"]["calls_error"], 1);
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back: TrustReport = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn table_lists_every_factor_and_marks_missing_data() {
        let text = render_table(&sample());
        for (name, _) in crate::trust::score::WEIGHTS {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
        assert!(text.contains("calls_error=1 calls_ok=1"), "{text}");
        assert!(text.contains('—'));
        assert!(text.contains("factors have data"));
    }

    #[test]
    fn summary_names_the_weakest_factor_and_new_servers() {
        let fresh = compute(&History::new("brand\u{1b}[2Jnew"), T0);
        let text = render_summary(&[sample(), fresh]);
        assert!(text.contains("filesystem"));
        assert!(text.contains("(new server)"));
        assert!(
            !text.contains('\u{1b}'),
            "control characters are neutralised"
        );
        assert!(render_summary(&[]).contains("no trust data"));
    }
}
