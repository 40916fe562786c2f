//! Times and ages: RFC 3339 timestamps to instants, and upstream's `duration.HumanDuration`
//! ("5s", "3m2s", "10m", "2d3h", ...) for AGE and similar columns.

use std::time::{SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// An instant as nanoseconds since the Unix epoch.
pub type Instant = i128;

/// Nanoseconds since the epoch of a `SystemTime` (negative before 1970).
pub fn from_system_time(t: SystemTime) -> Instant {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses RFC 3339 (`2024-01-02T03:04:05Z`, `...05.123456Z`, `...05+02:00`); None if malformed.
pub fn parse_rfc3339(s: &str) -> Option<Instant> {
    let date = s.get(0..10)?;
    let sep = s.get(10..11)?;
    if !matches!(sep, "T" | "t" | " ") || date.get(4..5)? != "-" || date.get(7..8)? != "-" {
        return None;
    }
    let (y, mo, d) = (digits(date.get(0..4)?)?, digits(date.get(5..7)?)?, digits(date.get(8..10)?)?);
    let time = s.get(11..)?;
    if time.get(2..3)? != ":" || time.get(5..6)? != ":" {
        return None;
    }
    let (h, mi, sec) = (digits(time.get(0..2)?)?, digits(time.get(3..5)?)?, digits(time.get(6..8)?)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = time.get(8..)?;
    let mut nanos: i128 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        let digits_str = frac.get(..len)?;
        if digits_str.is_empty() {
            return None;
        }
        let mut scaled: String = digits_str.chars().take(9).collect();
        while scaled.len() < 9 {
            scaled.push('0');
        }
        nanos = i128::from(digits(&scaled)?);
        rest = frac.get(len..)?;
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.get(3..4)? != ":" {
                return None;
            }
            let (oh, om) = (digits(rest.get(1..3)?)?, digits(rest.get(4..6)?)?);
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(i128::from(secs) * NANOS_PER_SEC + nanos)
}

/// Upstream `duration.HumanDuration` of a span in nanoseconds.
pub fn human_duration(nanos: i128) -> String {
    let seconds = nanos / NANOS_PER_SEC;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        let d = hours / 24;
        return if h == 0 { format!("{d}d") } else { format!("{d}d{h}h") };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        let y = hours / 24 / 365;
        return if dy == 0 { format!("{y}y") } else { format!("{y}y{dy}d") };
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream `translateTimestampSince`: "<unknown>" for a missing or zero time.
pub fn since(timestamp: Option<Instant>, now: Instant) -> String {
    match timestamp {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

/// The instant of a timestamp string field; None when absent, empty or malformed (a zero time).
pub fn time_of(value: Option<&serde_json::Value>) -> Option<Instant> {
    value.and_then(serde_json::Value::as_str).and_then(parse_rfc3339)
}
