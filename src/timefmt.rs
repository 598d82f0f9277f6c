//! RFC 3339 timestamps with microseconds, UTC, without a date-time dependency: the one
//! formatter (and its inverse, for the audit line's `ts`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-22T21:30:00.123456Z` for the given time.
pub fn rfc3339_micros(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Compact form for file names: `20261122T213000Z`.
pub fn compact(t: SystemTime) -> String {
    let s = rfc3339_micros(t);
    let mut out: String = s[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    out.push('Z');
    out
}

/// Howard Hinnant's days-from-civil inverse: days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-11-22T21:30:00.123456Z` (what `rfc3339_micros` writes) → time; `None` for anything
/// else.
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
        let frac = ts.get(20..ts.len() - 1)?;
        let digits: String = frac.chars().take(6).collect();
        micros = format!("{digits:0<6}").parse().ok()?;
    }
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

/// Howard Hinnant's days-from-civil: (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_the_inverse() {
        for micros in [
            0u64,
            951_782_400_500_000,
            1_767_225_599_999_999,
            1_796_000_000_123_456,
        ] {
            let t = UNIX_EPOCH + Duration::from_micros(micros);
            assert_eq!(parse(&rfc3339_micros(t)), Some(t));
        }
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_micros(1_767_225_600_000_001);
        assert_eq!(rfc3339_micros(t), "2026-01-01T00:00:00.000001Z");
        assert_eq!(compact(t), "20260101T000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339_micros(leap)[..10], "2000-02-29");
    }
}
