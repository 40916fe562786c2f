//! The scheduler's flags; `skiff server` flattens them next to the other components'.

use std::time::Duration;

/// Flags of the scheduler.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "scheduler")]
pub struct Opts {
    /// Schedule the pods whose spec.schedulerName is this.
    #[arg(long, default_value = "default-scheduler")]
    pub scheduler_name: String,
    /// Bindings (and unschedulable reports) in flight at once.
    #[arg(long = "scheduler-bind-concurrency", default_value_t = 64)]
    pub bind_concurrency: usize,
    /// How long an unschedulable pod waits for a cluster change before it is tried again anyway
    /// (e.g. `30s`, `2m`).
    #[arg(long = "scheduler-unschedulable-timeout", default_value = "60s", value_parser = parse_duration)]
    pub unschedulable_timeout: Duration,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            scheduler_name: "default-scheduler".into(),
            bind_concurrency: 64,
            unschedulable_timeout: Duration::from_secs(60),
        }
    }
}

/// Parses `300ms`, `45s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("invalid duration {s:?}: want a number with ms, s, m or h")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }
}
