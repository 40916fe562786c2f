//! What every controller gets: the API client, the flags, and an event recorder per controller.

use std::time::Duration;

use kube::Client;

/// Parses `50s`, `5m`, `300ms`, `1h30m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
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

/// Flags of the controller-manager. `skiff server` flattens these.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "controller-manager")]
pub struct Opts {
    /// Range of pod IPs; node IPAM gives each node a podCIDR from it.
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: String,
    /// Prefix length of each node's podCIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// How long a node may go without a heartbeat before it is marked NotReady/Unknown.
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// Controllers to run: `*` for all, `-name` to turn one off (e.g. `*,-cronjob`).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
}

impl Opts {
    /// Whether the controller called `name` should run.
    pub fn enabled(&self, name: &str) -> bool {
        let off = format!("-{name}");
        if self.controllers.contains(&off) {
            return false;
        }
        self.controllers.iter().any(|c| c == "*" || c == name)
    }
}

/// Shared by every controller of the process.
pub struct Context {
    pub client: Client,
    pub opts: Opts,
}

impl Context {
    /// An event recorder named for a controller, e.g. `deployment-controller`.
    pub fn recorder(&self, component: &str) -> api::events::Recorder {
        api::events::Recorder::new(self.client.clone(), component)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50s"), Ok(Duration::from_secs(50)));
        assert_eq!(parse_duration("40"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("5m3").is_err());
    }
}
