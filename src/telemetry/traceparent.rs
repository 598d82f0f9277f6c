//! W3C `traceparent` (version 00): `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
//! Only well-formed values are kept, so what reaches the audit file and the span is bounded.

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use serde_json::value::RawValue;

/// A `_meta.traceparent` value, if it is a well-formed string.
pub fn from_raw(raw: &RawValue) -> Option<String> {
    let s: &str = serde_json::from_str(raw.get()).ok()?;
    parse(s).map(|_| s.to_ascii_lowercase())
}

/// (trace id, parent span id, flags); `None` for anything malformed or all-zero.
pub fn parse(s: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [version, trace, parent, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex(version, 2) && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)) {
        return None;
    }
    if version.eq_ignore_ascii_case("ff") {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let parent = SpanId::from_hex(parent).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace != TraceId::INVALID && parent != SpanId::INVALID).then_some((
        trace,
        parent,
        TraceFlags::new(flags),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_only() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (t, p, f) = parse(ok).unwrap();
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.to_string(), "00f067aa0ba902b7");
        assert!(f.is_sampled());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        let raw = RawValue::from_string(format!("\"{ok}\"")).unwrap();
        assert_eq!(from_raw(&raw).as_deref(), Some(ok));
        let not_string = RawValue::from_string("42".into()).unwrap();
        assert!(from_raw(&not_string).is_none());
    }
}
