//! What the proxy observed about a server: the only input the trust score has (SPEC §7).
//!
//! Each observation carries the unix time it happened, injected by the caller, so decay and the
//! 30-day window are tested by setting a clock instead of sleeping.

use std::fmt;
use std::str::FromStr;

/// Severity of a security alert (poisoned description, drift held back, secret in a result, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// An operator's verdict from `mcp-warden feedback SERVER +1|-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Up,
    Down,
}

impl FromStr for Vote {
    type Err = String;

    /// `+1`/`1`/`up` and `-1`/`down`; anything else is a usage error naming what was expected.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "+1" | "1" | "up" => Ok(Vote::Up),
            "-1" | "down" => Ok(Vote::Down),
            other => Err(format!("feedback must be +1 or -1, got {other:?}")),
        }
    }
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Vote::Up => "+1",
            Vote::Down => "-1",
        })
    }
}

/// One thing the proxy saw. Which factor each feeds is decided in `score.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A server signature (response or listing) verified.
    SignatureValid,
    /// A server signature was present but failed (bad sig, unknown key, wrong audience).
    SignatureInvalid,
    /// A live listing matched an operator-attested pin file.
    AttestedPinMatched,
    /// A live listing contradicted an operator-attested pin file.
    AttestedPinMismatch,
    /// The upstream process started (or the HTTP upstream was reachable), or failed to.
    UpstreamStart { ok: bool },
    /// The MCP handshake (`initialize` / `server/discover`) succeeded or failed.
    Handshake { ok: bool },
    /// The upstream stayed up this many seconds (a delta since the previous report).
    Uptime { secs: u64 },
    /// A forwarded tool call returned a result.
    CallOk,
    /// A forwarded tool call returned a JSON-RPC error or `isError: true`.
    CallError,
    /// A security alert was raised about this server.
    Alert { severity: Severity },
    /// The policy refused a call to this server.
    CallDenied,
    /// The policy let a call to this server through.
    CallAllowed,
    /// A listing drifted from the pinned baseline.
    Drift,
    /// A client session with this server began.
    Session,
    /// An operator's `feedback` vote.
    Feedback(Vote),
}

impl Observation {
    /// Whether this was observed on the wire. Operator feedback is not: it must not make a server
    /// look "seen" (age, first contact) when the proxy never talked to it.
    pub fn is_traffic(&self) -> bool {
        !matches!(self, Observation::Feedback(_))
    }
}

/// An observation and when it happened (unix seconds, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub at: u64,
    pub obs: Observation,
}

impl Event {
    pub fn new(at: u64, obs: Observation) -> Self {
        Event { at, obs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_parse_from_the_cli_spellings() {
        assert_eq!("+1".parse::<Vote>(), Ok(Vote::Up));
        assert_eq!("1".parse::<Vote>(), Ok(Vote::Up));
        assert_eq!("-1".parse::<Vote>(), Ok(Vote::Down));
        assert_eq!(" down ".parse::<Vote>(), Ok(Vote::Down));
        assert!("0".parse::<Vote>().is_err());
        assert!("+2".parse::<Vote>().is_err());
        assert_eq!(Vote::Down.to_string(), "-1");
    }

    #[test]
    fn feedback_is_not_traffic() {
        assert!(!Observation::Feedback(Vote::Up).is_traffic());
        assert!(Observation::Session.is_traffic());
        assert!(Observation::Alert {
            severity: Severity::Low
        }
        .is_traffic());
    }
}
