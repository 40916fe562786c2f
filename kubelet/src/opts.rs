//! `skiff agent` flags owned by the kubelet, and the per-node plan derived from them.
//!
//! With `--runtime fake --count N` the process runs N hollow nodes `NAME-0 … NAME-(N-1)`:
//! node `i` gets the InternalIP `--node-ip` + `i` (default base 10.0.0.1, so 10.0.0.1, 10.0.0.2, …),
//! and with `--pod-cidr` the `i`-th /24 of it (the whole CIDR when N is 1). Without `--pod-cidr`
//! each node waits for the cluster (node IPAM) to set its `spec.podCIDR`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::Error;
use crate::node::object::NodeConfig;
use api::cidr::Cidr;

pub use crate::runtime::factory::RuntimeKind;

#[derive(Debug, Clone, clap::Args)]
#[group(id = "kubelet")]
pub struct Opts {
    /// Name of this node (with --count N: the prefix of NAME-0 … NAME-(N-1)). Default: the host name.
    #[arg(long)]
    pub node_name: Option<String>,
    /// InternalIP of this node (with --count N: of the first node; the others count up from it).
    /// Default for the fake runtime: 10.0.0.1.
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Container runtime.
    #[arg(long, value_enum, default_value = "linux")]
    pub runtime: RuntimeKind,
    /// Number of hollow nodes to run (fake runtime only).
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Pod range for a node whose podCIDR the cluster does not assign (with --count N: node i gets
    /// its i-th /24).
    #[arg(long, value_parser = Cidr::parse_ipv4)]
    pub pod_cidr: Option<Cidr>,
    /// CPU capacity of a hollow node.
    #[arg(long, default_value = "4")]
    pub fake_cpu: String,
    /// Memory capacity of a hollow node.
    #[arg(long, default_value = "16Gi")]
    pub fake_memory: String,
    /// Pod capacity of a hollow node.
    #[arg(long, default_value_t = 110)]
    pub fake_pods: u32,
    /// Ephemeral-storage capacity of a hollow node.
    #[arg(long, default_value = "100Gi")]
    pub fake_ephemeral_storage: String,
    /// Extra node labels, k=v,...
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,
    /// How long a container of a restartPolicy Never/OnFailure pod runs on a hollow node before it
    /// exits 0 (the pod annotation skiff.io/fake-exit-code: "<n>" makes it exit n instead).
    #[arg(long, default_value_t = 2.0)]
    pub fake_pod_run_seconds: f64,
    /// How often the node posts its status (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = api::duration::parse)]
    pub node_status_update_frequency: Duration,
    /// Duration of the node's Lease; it is renewed every quarter of it.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: u32,
    /// This node's cgroup root (`skiff` under each v1 controller, `skiff.slice` in the v2 tree);
    /// every node on one machine needs its own.
    #[arg(long, default_value = "skiff")]
    pub cgroup_root: String,
    /// Most pods this node runs (its `pods` capacity; Linux runtime).
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// HTTPS port of the kubelet's API (logs, exec, attach, port-forward, stats); 0 disables it.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// The kubelet's serving certificate (PEM); without it a node run by `skiff server` gets one
    /// from the cluster CA.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// The key of --tls-cert-file (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<std::path::PathBuf>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            node_name: None,
            node_ip: None,
            runtime: RuntimeKind::Linux,
            count: 1,
            pod_cidr: None,
            fake_cpu: "4".into(),
            fake_memory: "16Gi".into(),
            fake_pods: 110,
            fake_ephemeral_storage: "100Gi".into(),
            node_labels: Vec::new(),
            fake_pod_run_seconds: 2.0,
            node_status_update_frequency: Duration::from_secs(10),
            node_lease_duration_seconds: 40,
            cgroup_root: "skiff".into(),
            max_pods: 110,
            kubelet_port: 10250,
            tls_cert_file: None,
            tls_private_key_file: None,
        }
    }
}

fn invalid(flag: &'static str, message: impl Into<String>) -> Error {
    Error::InvalidFlag { flag, message: message.into() }
}

/// A DNS-1123 subdomain, as Node names must be.
fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_lowercase()).unwrap_or_default()
}

/// A capacity flag: a non-negative quantity in the grammar the API server validates.
fn quantity(flag: &'static str, v: &str) -> Result<Quantity, Error> {
    match api::quantity::parse(v) {
        Ok(q) if !q.is_negative() => Ok(Quantity(v.to_string())),
        _ => Err(invalid(flag, format!("{v:?} is not a quantity (e.g. 4, 500m, 16Gi)"))),
    }
}

impl Opts {
    /// The nodes to run, validated. `kernel_version`/`boot_id` describe this host;
    /// `runtime_version` is left empty for [`crate::run`] to fill from each node's runtime.
    pub fn plan(&self) -> Result<Vec<NodeConfig>, Error> {
        if self.runtime == RuntimeKind::Linux {
            return Err(Error::RuntimeUnavailable("linux".into()));
        }
        if self.count == 0 {
            return Err(invalid("count", "must be at least 1"));
        }
        if !(self.fake_pod_run_seconds.is_finite() && self.fake_pod_run_seconds >= 0.0) {
            return Err(invalid("fake-pod-run-seconds", "must be a non-negative number"));
        }
        if self.node_status_update_frequency.is_zero() {
            return Err(invalid("node-status-update-frequency", "must be positive"));
        }
        if self.node_lease_duration_seconds == 0 || self.node_lease_duration_seconds > i32::MAX as u32 {
            return Err(invalid("node-lease-duration-seconds", "must be a positive number of seconds"));
        }
        let base = match self.node_name.clone() {
            Some(n) => n,
            None => host_name(),
        };
        // Hollow nodes are always NAME-0 … NAME-(N-1) (DESIGN §10), also for N = 1; a real node is NAME.
        let names: Vec<String> = match self.runtime {
            RuntimeKind::Fake => (0..self.count).map(|i| format!("{base}-{i}")).collect(),
            RuntimeKind::Linux => vec![base.clone()],
        };
        if let Some(bad) = names.iter().find(|n| !valid_node_name(n)) {
            return Err(invalid("node-name", format!("{bad:?} is not a valid node name (lowercase DNS subdomain)")));
        }
        let mut labels = BTreeMap::new();
        for kv in self.node_labels.iter().filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    labels.insert(k.to_string(), v.to_string());
                }
                _ => return Err(invalid("node-labels", format!("{kv:?} is not key=value"))),
            }
        }
        let mut capacity = BTreeMap::new();
        capacity.insert("cpu".to_string(), quantity("fake-cpu", &self.fake_cpu)?);
        capacity.insert("memory".to_string(), quantity("fake-memory", &self.fake_memory)?);
        capacity.insert("pods".to_string(), Quantity(self.fake_pods.to_string()));
        capacity
            .insert("ephemeral-storage".to_string(), quantity("fake-ephemeral-storage", &self.fake_ephemeral_storage)?);
        capacity.insert("hugepages-1Gi".to_string(), Quantity("0".into()));
        capacity.insert("hugepages-2Mi".to_string(), Quantity("0".into()));

        let base_ip = self.node_ip.unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let kernel_version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let boot_id = crate::runtime::fake::stable_digest(&format!("boot {}", rand::random::<u64>()))[..32].to_string();
        let mut out = Vec::with_capacity(names.len());
        for (i, name) in names.into_iter().enumerate() {
            let i = i as u32;
            let ip = match base_ip {
                IpAddr::V4(v4) => u32::from(v4)
                    .checked_add(i)
                    .map(|n| IpAddr::V4(Ipv4Addr::from(n)))
                    .ok_or_else(|| invalid("node-ip", "too close to the end of the address space for --count"))?,
                IpAddr::V6(v6) => IpAddr::V6(u128::from(v6).wrapping_add(u128::from(i)).into()),
            };
            let pod_cidr = match self.pod_cidr {
                None => None,
                Some(c) if !c.is_ipv4() => return Err(invalid("pod-cidr", format!("{c} is not an IPv4 CIDR"))),
                Some(c) if self.count == 1 => Some(c),
                Some(c) => Some(c.subnet(24, u128::from(i)).ok_or_else(|| {
                    invalid("pod-cidr", format!("{c} has no /24 number {i} for --count {}", self.count))
                })?),
            };
            out.push(NodeConfig {
                name,
                ip,
                pod_cidr,
                labels: labels.clone(),
                capacity: capacity.clone(),
                runtime_version: String::new(),
                kernel_version: kernel_version.clone(),
                os_image: "skiff hollow node".into(),
                boot_id: boot_id.clone(),
            });
        }
        Ok(out)
    }

    pub fn fake_run_for(&self) -> Duration {
        Duration::try_from_secs_f64(self.fake_pod_run_seconds).unwrap_or(Duration::from_secs(2))
    }

    /// How often the Lease is renewed: a quarter of its duration, as upstream.
    pub fn lease_renew_every(&self) -> Duration {
        Duration::from_secs(u64::from(self.node_lease_duration_seconds)) / 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(count: u32) -> Opts {
        Opts { node_name: Some("hollow".into()), runtime: RuntimeKind::Fake, count, ..Default::default() }
    }

    #[test]
    fn plans_names_ips_and_cidrs() {
        let mut o = fake(3);
        o.pod_cidr = Some("10.100.0.0/16".parse().expect("cidr"));
        o.node_labels = vec!["zone=a".into(), "tier=".into()];
        let plan = o.plan().expect("plan");
        let got: Vec<(String, String, String)> = plan
            .iter()
            .map(|n| (n.name.clone(), n.ip.to_string(), n.pod_cidr.map(|c| c.to_string()).unwrap_or_default()))
            .collect();
        let want = [
            ("hollow-0", "10.0.0.1", "10.100.0.0/24"),
            ("hollow-1", "10.0.0.2", "10.100.1.0/24"),
            ("hollow-2", "10.0.0.3", "10.100.2.0/24"),
        ];
        assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())));
        assert_eq!(plan[0].labels.get("zone").map(String::as_str), Some("a"));
        assert_eq!(plan[0].labels.get("tier").map(String::as_str), Some(""));
        assert_eq!(plan[0].capacity.get("memory").map(|q| q.0.as_str()), Some("16Gi"));

        // Quantities upstream accepts that the kubelet's own check used to refuse.
        let exp = Opts {
            fake_cpu: "+4".into(),
            fake_memory: "16e9".into(),
            fake_ephemeral_storage: ".5Ti".into(),
            ..fake(1)
        };
        let caps = &exp.plan().expect("plan")[0].capacity;
        assert_eq!(caps.get("memory").map(|q| q.0.as_str()), Some("16e9"));

        let single = fake(1).plan().expect("plan");
        assert_eq!(single[0].name, "hollow-0", "hollow nodes are numbered also when there is one");
    }

    #[test]
    fn rejects_bad_flags() {
        let linux = Opts { runtime: RuntimeKind::Linux, ..fake(1) };
        assert!(matches!(linux.plan(), Err(Error::RuntimeUnavailable(_))));
        let cases: Vec<(Opts, &str)> = vec![
            (fake(0), "count"),
            (Opts { node_name: Some("Bad_Name".into()), ..fake(1) }, "node-name"),
            (Opts { node_labels: vec!["novalue".into()], ..fake(1) }, "node-labels"),
            (Opts { fake_memory: "lots".into(), ..fake(1) }, "fake-memory"),
            // Once accepted here though the API server rejects them (the shared grammar now decides).
            (Opts { fake_memory: "1.2.3".into(), ..fake(1) }, "fake-memory"),
            (Opts { fake_cpu: "4cores".into(), ..fake(1) }, "fake-cpu"),
            (Opts { fake_cpu: "-1".into(), ..fake(1) }, "fake-cpu"),
            (Opts { fake_pod_run_seconds: -1.0, ..fake(1) }, "fake-pod-run-seconds"),
            (Opts { pod_cidr: Some("10.0.0.0/24".parse().expect("cidr")), ..fake(2) }, "pod-cidr"),
            (Opts { pod_cidr: Some("fd00::/64".parse().expect("cidr")), ..fake(1) }, "pod-cidr"),
        ];
        for (o, flag) in cases {
            match o.plan() {
                Err(Error::InvalidFlag { flag: f, .. }) => assert_eq!(f, flag),
                other => panic!("{flag}: {other:?}"),
            }
        }
    }
}
