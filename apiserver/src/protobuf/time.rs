//! RFC 3339 formatting of Unix timestamps, as Go's `metav1.Time` (seconds precision) and
//! `metav1.MicroTime` (microseconds) marshal to JSON, always in UTC with a `Z` suffix.

/// Formats `seconds` + `nanos` since the Unix epoch; `micros` selects 6 fractional digits.
/// Returns `None` when the year falls outside 0000..=9999 (Go refuses to marshal those too).
pub fn rfc3339(seconds: i64, nanos: i64, micros: bool) -> Option<String> {
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let secs = total.div_euclid(1_000_000_000);
    let frac = total.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).ok()?);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let (h, m, s) = (tod / 3600, tod % 3600 / 60, tod % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
    if micros {
        out.push_str(&format!(".{:06}", frac / 1000));
    }
    out.push('Z');
    Some(out)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0, 0, false).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(1_732_000_000, 0, false).as_deref(), Some("2024-11-19T07:06:40Z"));
        assert_eq!(rfc3339(951_782_400, 0, false).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(rfc3339(1_732_000_000, 123_456_789, true).as_deref(), Some("2024-11-19T07:06:40.123456Z"));
        assert_eq!(rfc3339(-1, 0, false).as_deref(), Some("1969-12-31T23:59:59Z"));
        assert_eq!(rfc3339(-62_135_596_800, 0, false).as_deref(), Some("0001-01-01T00:00:00Z"));
        assert_eq!(rfc3339(0, -1, true).as_deref(), Some("1969-12-31T23:59:59.999999Z"));
        assert_eq!(rfc3339(i64::MAX, 0, false), None);
        assert_eq!(rfc3339(i64::MIN, i64::MIN, false), None);
        assert_eq!(rfc3339(253_402_300_800, 0, false), None); // year 10000
    }
}
