//! Standard 5-field cron schedules, as upstream's `cron.ParseStandard` (robfig/cron v3) reads them,
//! and the next run time in a time zone.
//!
//! Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC), day of week
//! (0-6 or SUN-SAT). Each field is a list of `*`, `?`, `N`, `N-M`, with an optional `/step`
//! (`N/step` means `N-max/step`). Descriptors: `@yearly`, `@annually`, `@monthly`, `@weekly`,
//! `@daily`, `@midnight`, `@hourly`. As in robfig/cron, when either day field is a bare `*`/`?`
//! both day fields must match; otherwise either may.
//!
//! Next times are instants whose wall-clock time in the zone matches: a wall time skipped by a
//! daylight-saving jump does not run that day, and one repeated by a jump back runs twice.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Either day field was a bare `*` or `?` (then both day fields must match).
    day_star: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("expected exactly 5 fields, found {0}: {1:?}")]
    FieldCount(usize, String),
    #[error("unrecognized descriptor {0:?}")]
    Descriptor(String),
    #[error("time zone prefixes are not supported in schedules: {0:?}")]
    TimeZone(String),
    #[error("invalid {field} field {expr:?}: {why}")]
    Field { field: &'static str, expr: String, why: String },
}

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds { name: "minute", min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { name: "hour", min: 0, max: 23, names: &[] };
const DOM: Bounds = Bounds { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
const DOW: Bounds =
    Bounds { name: "day-of-week", min: 0, max: 6, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

/// How far ahead [`Schedule::next_after`] looks before deciding a schedule never fires
/// (robfig/cron gives up after five years too, e.g. for `0 0 30 2 *`).
const SEARCH_YEARS: i16 = 5;

impl Schedule {
    /// Parses a standard cron expression.
    pub fn parse(spec: &str) -> Result<Schedule, ParseError> {
        let spec = spec.trim();
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            return Err(ParseError::TimeZone(spec.to_string()));
        }
        if let Some(desc) = spec.strip_prefix('@') {
            let expanded = match desc.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(ParseError::Descriptor(spec.to_string())),
            };
            return Schedule::parse(expanded);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(ParseError::FieldCount(fields.len(), spec.to_string()));
        };
        let (dom_bits, dom_star) = parse_field(dom, &DOM)?;
        let (dow_bits, dow_star) = parse_field(dow, &DOW)?;
        Ok(Schedule {
            minute: parse_field(minute, &MINUTES)?.0,
            hour: parse_field(hour, &HOURS)?.0,
            dom: dom_bits,
            month: parse_field(month, &MONTHS)?.0,
            dow: dow_bits,
            day_star: dom_star || dow_star,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = bit(&self.dom, date.day() as u32);
        let dow = bit(&self.dow, date.weekday().to_sunday_zero_offset() as u32);
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first instant strictly after `after` (at whole minutes) whose wall time in `tz`
    /// matches, or `None` if nothing matches within five years.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        // Whole minutes: drop seconds, then step one minute forward.
        let secs = after.as_second().div_euclid(60) * 60 + 60;
        let mut t = Timestamp::from_second(secs).ok()?;
        let limit_year = after.to_zoned(tz.clone()).year().saturating_add(SEARCH_YEARS);
        loop {
            let wall = t.to_zoned(tz.clone()).datetime();
            if wall.year() > limit_year {
                return None;
            }
            if !bit(&self.month, wall.month() as u32) {
                let first = wall.date().first_of_month().checked_add(1.month()).ok()?;
                t = start_of(first, tz)?;
                continue;
            }
            if !self.day_matches(wall.date()) {
                t = start_of(wall.date().tomorrow().ok()?, tz)?;
                continue;
            }
            if !bit(&self.hour, wall.hour() as u32) {
                // To the next hour in absolute time: a repeated hour is visited twice, a skipped
                // one never.
                let into_hour = i64::from(wall.minute()) * 60 + i64::from(wall.second());
                t = t
                    .checked_sub(SignedDuration::from_secs(into_hour))
                    .ok()?
                    .checked_add(SignedDuration::from_hours(1))
                    .ok()?;
                continue;
            }
            if !bit(&self.minute, wall.minute() as u32) {
                t = t.checked_add(SignedDuration::from_mins(1)).ok()?;
                continue;
            }
            return Some(t);
        }
    }
}

/// The first instant of `date` in `tz` (later side of a gap at midnight).
fn start_of(date: Date, tz: &TimeZone) -> Option<Timestamp> {
    let dt = DateTime::from_parts(date, jiff::civil::Time::midnight());
    tz.to_ambiguous_zoned(dt).compatible().ok().map(|z| z.timestamp())
}

fn bit(bits: &u64, n: u32) -> bool {
    n < 64 && bits & (1u64 << n) != 0
}

/// Parses one field; returns its bits and whether it was a bare `*`/`?`.
fn parse_field(expr: &str, b: &Bounds) -> Result<(u64, bool), ParseError> {
    let err = |why: String| ParseError::Field { field: b.name, expr: expr.to_string(), why };
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s.parse::<u32>().map_err(|_| err(format!("bad step {s:?}")))?)),
            None => (part, None),
        };
        let (start, end, bare_star) = if range == "*" || range == "?" {
            (b.min, b.max, true)
        } else if let Some((lo, hi)) = range.split_once('-') {
            (value(lo, b).map_err(&err)?, value(hi, b).map_err(&err)?, false)
        } else {
            let v = value(range, b).map_err(&err)?;
            // `N/step` means `N-max/step`.
            (v, if step.is_some() { b.max } else { v }, false)
        };
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(err("step must be positive".into()));
        }
        if start < b.min || end > b.max {
            return Err(err(format!("out of range {}-{}", b.min, b.max)));
        }
        if start > end {
            return Err(err(format!("beginning of range ({start}) beyond end ({end})")));
        }
        star |= bare_star && step == 1;
        for v in (start..=end).step_by(step as usize) {
            bits |= 1u64 << v;
        }
    }
    Ok((bits, star))
}

fn value(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + if b.min == 1 { 1 } else { 0 });
    }
    s.parse::<u32>().map_err(|_| format!("failed to parse {s:?}"))
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
