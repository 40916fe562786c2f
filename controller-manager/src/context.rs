//! What every controller gets: the API client, the flags, and an event recorder per controller.

use std::time::Duration;

use kube::Client;

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
    #[arg(long, default_value = "50s", value_parser = api::duration::parse)]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = api::duration::parse)]
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
