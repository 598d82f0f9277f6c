//! The audit line's `ts` (RFC 3339, UTC, as `timefmt` writes it) back to a `SystemTime`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-22T21:30:00.123456Z` → time; `None` for anything else.
pub fn parse(ts: &str) -> Option<SystemTime> {
    let b = ts.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !ts.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut micros = 0u64;
    if b.get(19) == Some(&b'.') {
        let frac = &ts[20..ts.len() - 1];
        let digits: String = frac.chars().take(6).collect();
        micros = format!("{digits:0<6}").parse().ok()?;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_timefmt() {
        for micros in [
            0u64,
            951_782_400_500_000,
            1_767_225_599_999_999,
            1_796_000_000_123_456,
        ] {
            let t = UNIX_EPOCH + Duration::from_micros(micros);
            assert_eq!(parse(&crate::timefmt::rfc3339_micros(t)), Some(t));
        }
        assert_eq!(parse("yesterday"), None);
    }
}
