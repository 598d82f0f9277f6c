//! The trust gate: may a tool of this risk be called on a server with this score? (SPEC §6, §7)
//!
//! The pipeline turns `Refused` into JSON-RPC -32017 with `score` and `threshold` in the error
//! data (corpus POL-11). `critical` tools use the `high` threshold here; their mandatory human
//! approval is the approval step's job, not this gate's.

use std::fmt;

/// A tool's risk as policies and annotations declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    /// `critical` always needs a human yes, whatever the score (SPEC §6).
    pub fn always_needs_approval(self) -> bool {
        self == Risk::Critical
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Minimum trust per risk (`[policy] risk_thresholds`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub low: f64,
    pub medium: f64,
    pub high: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            low: 0.3,
            medium: 0.5,
            high: 0.7,
        }
    }
}

impl Thresholds {
    pub fn for_risk(&self, risk: Risk) -> f64 {
        match risk {
            Risk::Low => self.low,
            Risk::Medium => self.medium,
            Risk::High | Risk::Critical => self.high,
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GateDecision {
    Allowed,
    Refused {
        score: f64,
        threshold: f64,
        risk: Risk,
    },
}

impl GateDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, GateDecision::Allowed)
    }

    /// `data.reason` for -32017: what the operator can act on.
    pub fn reason(&self, server: &str) -> Option<String> {
        match self {
            GateDecision::Allowed => None,
            GateDecision::Refused { score, threshold, risk } => Some(format!(
                "trust score of server {server:?} is {score:.2}, below the {threshold:.2} required for \
                 {risk}-risk tools; see `mcp-warden trust {server}`"
            )),
        }
    }
}

/// Decides whether a `risk` tool may run on a server scored `score`. The threshold is the risk's
/// threshold or the policy's `min_trust` for this server/tool, whichever is stricter: a policy can
/// only raise the bar. A score that is not a number fails closed.
pub fn check(
    score: f64,
    risk: Risk,
    thresholds: &Thresholds,
    min_trust: Option<f64>,
) -> GateDecision {
    let base = thresholds.for_risk(risk);
    let threshold = match min_trust {
        Some(m) if m.is_finite() => base.max(m),
        _ => base,
    };
    if score.is_finite() && score >= threshold {
        GateDecision::Allowed
    } else {
        GateDecision::Refused {
            score,
            threshold,
            risk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(d: GateDecision) -> Option<(f64, f64)> {
        match d {
            GateDecision::Refused {
                score, threshold, ..
            } => Some((score, threshold)),
            GateDecision::Allowed => None,
        }
    }

    #[test]
    fn default_thresholds_per_risk() {
        let t = Thresholds::default();
        assert!(
            check(0.3, Risk::Low, &t, None).is_allowed(),
            "equal to the threshold passes"
        );
        assert_eq!(refused(check(0.29, Risk::Low, &t, None)), Some((0.29, 0.3)));
        assert!(check(0.5, Risk::Medium, &t, None).is_allowed());
        assert_eq!(
            refused(check(0.49, Risk::Medium, &t, None)),
            Some((0.49, 0.5))
        );
        assert!(check(0.7, Risk::High, &t, None).is_allowed());
        assert_eq!(
            refused(check(0.69, Risk::High, &t, None)),
            Some((0.69, 0.7))
        );
    }

    #[test]
    fn critical_uses_the_high_threshold_and_always_needs_approval() {
        let t = Thresholds::default();
        assert_eq!(
            refused(check(0.6, Risk::Critical, &t, None)),
            Some((0.6, 0.7))
        );
        assert!(check(0.9, Risk::Critical, &t, None).is_allowed());
        assert!(Risk::Critical.always_needs_approval());
        assert!(!Risk::High.always_needs_approval());
    }

    #[test]
    fn min_trust_only_raises_the_bar() {
        let t = Thresholds::default();
        assert_eq!(
            refused(check(0.5, Risk::Low, &t, Some(0.8))),
            Some((0.5, 0.8))
        );
        assert!(check(0.35, Risk::Low, &t, Some(0.0)).is_allowed());
        assert_eq!(
            refused(check(0.6, Risk::High, &t, Some(0.1))),
            Some((0.6, 0.7))
        );
        assert!(
            check(0.35, Risk::Low, &t, Some(f64::NAN)).is_allowed(),
            "a bad min_trust is ignored"
        );
    }

    #[test]
    fn nan_score_fails_closed() {
        let t = Thresholds {
            low: 0.0,
            medium: 0.0,
            high: 0.0,
        };
        assert!(!check(f64::NAN, Risk::Low, &t, None).is_allowed());
    }

    #[test]
    fn pol_11_reason_names_score_threshold_and_command() {
        let d = check(0.2, Risk::High, &Thresholds::default(), None);
        let reason = d.reason("payments").unwrap();
        assert!(reason.contains("0.20") && reason.contains("0.70") && reason.contains("high-risk"));
        assert!(reason.contains("mcp-warden trust payments"));
        assert_eq!(GateDecision::Allowed.reason("x"), None);
    }
}
