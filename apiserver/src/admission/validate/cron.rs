//! CronJob schedules: five fields (minute hour day-of-month month day-of-week) in the standard cron
//! syntax (`*`, `?`, lists, ranges, steps, month and weekday names) or a `@` descriptor. Time zones
//! must not be written into the schedule. Messages follow robfig/cron, which upstream uses.

fn field_value(s: &str, names: &[&str], base: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + base);
    }
    s.parse::<u32>().map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"))
}

fn check_field(field: &str, min: u32, max: u32, names: &[&str], base: u32) -> Result<(), String> {
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step = s.parse::<u32>().map_err(|_| {
                    format!("failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax")
                })?;
                if step == 0 {
                    return Err(format!("step of range should be a positive number: {part}"));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        if range == "*" || range == "?" {
            continue;
        }
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (field_value(a, names, base)?, field_value(b, names, base)?),
            None => {
                let v = field_value(range, names, base)?;
                (v, if step.is_some() { max } else { v })
            }
        };
        if lo < min {
            return Err(format!("beginning of range ({lo}) below minimum ({min}): {part}"));
        }
        if hi > max {
            return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
        }
        if lo > hi {
            return Err(format!("beginning of range ({lo}) beyond end of range ({hi}): {part}"));
        }
    }
    Ok(())
}

const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Checks a schedule; `Err` carries the message.
pub fn check(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
    }
    if let Some(desc) = s.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => Ok(()),
            d if d.starts_with("every ") => {
                let dur = d.trim_start_matches("every ").trim();
                if !dur.is_empty()
                    && dur.bytes().any(|b| b.is_ascii_digit())
                    && dur.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
                {
                    Ok(())
                } else {
                    Err(format!("failed to parse duration {s}: time: invalid duration \"{dur}\""))
                }
            }
            _ => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: {}", fields.len(), s));
    }
    let specs: [(u32, u32, &[&str], u32); 5] =
        [(0, 59, &[], 0), (0, 23, &[], 0), (1, 31, &[], 0), (1, 12, MONTHS, 1), (0, 6, DAYS, 0)];
    for (f, (min, max, names, base)) in fields.iter().zip(specs) {
        check_field(f, min, max, names, base)?;
    }
    Ok(())
}

/// A time zone must look like an IANA name (`UTC`, `Europe/Berlin`); no time zone database is consulted.
pub fn check_time_zone(tz: &str) -> Result<(), String> {
    let ok = !tz.is_empty()
        && !tz.starts_with('/')
        && !tz.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        && tz.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(format!("unknown time zone {tz}"))
    }
}
