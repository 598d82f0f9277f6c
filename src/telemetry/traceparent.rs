//! W3C `traceparent` (version 00): `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`,
//! and its `tracestate` (vendor list). Only well-formed values are kept, so what reaches the
//! audit file and the span is bounded. They come from `params._meta`, or in `serve` from the
//! HTTP request's headers when `_meta` has none (`adopt_headers`).

use std::str::FromStr;

use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
use serde_json::value::RawValue;

use crate::audit::Record;

/// The longest `tracestate` kept (W3C: propagators must carry at least 512 characters; beyond
/// that they may drop it, so we do: the audit line stays bounded).
const MAX_TRACESTATE: usize = 512;

/// A `_meta.traceparent` value, if it is a well-formed string.
pub fn from_raw(raw: &RawValue) -> Option<String> {
    let s: &str = serde_json::from_str(raw.get()).ok()?;
    parse(s).map(|_| s.to_ascii_lowercase())
}

/// A `_meta.tracestate` value, if it is a well-formed string.
pub fn tracestate_from_raw(raw: &RawValue) -> Option<String> {
    let s: &str = serde_json::from_str(raw.get()).ok()?;
    tracestate(s)
}

/// A well-formed `tracestate` list in its canonical form; `None` when malformed, empty or long.
pub fn tracestate(s: &str) -> Option<String> {
    if s.len() > MAX_TRACESTATE {
        return None;
    }
    let header = TraceState::from_str(s).ok()?.header();
    (!header.is_empty()).then_some(header)
}

/// The parsed trace state of a record's `tracestate` (none: the default, empty).
pub fn trace_state(s: Option<&str>) -> TraceState {
    s.and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default()
}

/// `serve`: the W3C trace context of the HTTP request (`traceparent` / `tracestate` headers),
/// taken into the request's record when its `params._meta` carried none, so the proxy's spans
/// join the client's trace whichever way the client propagates it. `_meta` wins: it is the
/// message's own context, and stays the same across hops that do not keep HTTP headers.
pub fn adopt_headers(record: &mut Record, traceparent: Option<&str>, tracestate: Option<&str>) {
    if record.traceparent.is_some() {
        return;
    }
    let Some(tp) = traceparent.filter(|t| parse(t).is_some()) else {
        return;
    };
    record.traceparent = Some(tp.trim().to_ascii_lowercase());
    record.tracestate = tracestate.and_then(self::tracestate);
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

    #[test]
    fn tracestate_is_kept_only_when_well_formed_and_bounded() {
        assert_eq!(
            tracestate("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7").as_deref(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        );
        assert!(tracestate("").is_none());
        assert!(tracestate("no equals sign").is_none());
        assert!(tracestate(&format!("k={}", "v".repeat(600))).is_none());
        let raw = RawValue::from_string("\"vendor=x\"".into()).unwrap();
        assert_eq!(tracestate_from_raw(&raw).as_deref(), Some("vendor=x"));
    }

    #[test]
    fn headers_are_adopted_only_when_meta_had_no_traceparent() {
        let meta = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut r = Record::new("s", "srv", crate::audit::Direction::ClientToServer, 0);
        adopt_headers(&mut r, Some("junk"), Some("a=b"));
        assert_eq!(
            (r.traceparent.as_deref(), r.tracestate.as_deref()),
            (None, None)
        );
        adopt_headers(&mut r, Some(header), Some("a=b"));
        assert_eq!(r.traceparent.as_deref(), Some(header));
        assert_eq!(r.tracestate.as_deref(), Some("a=b"));
        let mut r = Record::new("s", "srv", crate::audit::Direction::ClientToServer, 0);
        r.traceparent = Some(meta.into());
        adopt_headers(&mut r, Some(header), Some("a=b"));
        assert_eq!(r.traceparent.as_deref(), Some(meta));
        assert_eq!(r.tracestate, None);
    }
}
