//! Durations on the command line, as Go's `time.ParseDuration` writes them for the flags
//! users know from Kubernetes (`50s`, `5m`, `1m30s`, `250ms`), or a bare number of seconds.

use std::time::Duration;

/// A duration flag that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(pub String);

/// Parses `50s`, `5m`, `300ms`, `1h30m` or a bare number of seconds.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    parse_str(s).map_err(DurationError)
}

fn parse_str(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration: want e.g. 10s, 500ms, 1m30s".to_string());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            "ms".to_string()
        } else {
            c.to_string()
        };
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        num.clear();
        let secs = match unit.as_str() {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
        };
        total += Duration::from_secs_f64(secs);
    }
    if !num.is_empty() {
        return Err(format!("invalid duration {s:?}: missing unit"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("50s"), Ok(Duration::from_secs(50)));
        assert_eq!(parse("40"), Ok(Duration::from_secs(40)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse("5x").is_err());
        assert!(parse("5m3").is_err());
    }

    #[test]
    fn fractions_and_bad_input() {
        for (input, want_ms) in [("10s", 10_000), ("500ms", 500), ("1m", 60_000), ("3", 3000), ("1.5s", 1500)] {
            assert_eq!(parse(input).map(|d| d.as_millis()), Ok(want_ms), "{input}");
        }
        for bad in ["", "s", "10x", "-1s", "1..5s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
