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
    #[arg(long = "scheduler-unschedulable-timeout", default_value = "60s", value_parser = api::duration::parse)]
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
