//! `skiff agent` flags owned by the kubelet, and the per-node plan derived from them.
//!
//! With `--runtime fake --count N` the process runs N hollow nodes `NAME-0 … NAME-(N-1)`:
//! node `i` gets the InternalIP `--node-ip` + `i` (default base 10.0.0.1, so 10.0.0.1, 10.0.0.2, …),
//! and with `--pod-cidr` the `i`-th /24 of it (the whole CIDR when N is 1). Without `--pod-cidr`
//! each node waits for the cluster (node IPAM) to set its `spec.podCIDR`.
//!
//! With `--runtime linux` the process runs one real node, `--node-name` (default: the host name)
//! at `--node-ip` (default: the host's primary IPv4 address), with the host's capacity (online
//! CPUs, MemTotal, huge pages, the size of the data dir's filesystem, `--max-pods`) and
//! allocatable = capacity less `--system-reserved`, `--kube-reserved` and the `--eviction-hard`
//! thresholds of memory and nodefs, as upstream computes it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::Error;
use crate::node::host::{self, PressureSource, Threshold};
use crate::node::object::{self, NodeConfig};
use crate::runtime::ImageGcPolicy;
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
    /// How often a running pod's configMap, secret, downwardAPI and projected volumes are brought
    /// up to date with their objects (upstream's `--sync-frequency`).
    #[arg(long, default_value = "1m", value_parser = api::duration::parse)]
    pub sync_frequency: Duration,
    /// A container's log is rotated when it would grow past this (a quantity: 10Mi; 0: never).
    #[arg(long, default_value = "10Mi")]
    pub container_log_max_size: String,
    /// Log files kept per container, the current one included (at least 2).
    #[arg(long, default_value_t = 5)]
    pub container_log_max_files: u32,
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
    /// Resources kept for the system's daemons, k=v,... (cpu, memory, ephemeral-storage, pid);
    /// taken off allocatable (Linux runtime).
    #[arg(long, value_delimiter = ',')]
    pub system_reserved: Vec<String>,
    /// Resources kept for the kubelet and the runtime, k=v,... (cpu, memory, ephemeral-storage,
    /// pid); taken off allocatable (Linux runtime).
    #[arg(long, value_delimiter = ',')]
    pub kube_reserved: Vec<String>,
    /// Hard eviction thresholds, signal<value,... (memory.available, nodefs.available,
    /// nodefs.inodesFree, imagefs.available, imagefs.inodesFree, containerfs.available,
    /// containerfs.inodesFree, pid.available; a quantity or a percentage). They drive the
    /// pressure conditions and are taken off allocatable (memory, nodefs) (Linux runtime).
    #[arg(long, default_value = host::DEFAULT_EVICTION_HARD)]
    pub eviction_hard: String,
    /// Registries config (mirrors, rewrites, auth, TLS; k3s's registries.yaml format). Default:
    /// <data-dir>/agent/registries.yaml when it exists (Linux runtime).
    #[arg(long, value_name = "FILE")]
    pub private_registry: Option<std::path::PathBuf>,
    /// Image filesystem usage (percent) at which image GC removes unused images (100: never).
    #[arg(long, default_value_t = 85)]
    pub image_gc_high_threshold: u8,
    /// Image filesystem usage (percent) image GC frees down to.
    #[arg(long, default_value_t = 80)]
    pub image_gc_low_threshold: u8,
    /// Soft eviction thresholds, same grammar as --eviction-hard: a pod is evicted once one has
    /// been crossed for its --eviction-soft-grace-period (Linux runtime).
    #[arg(long, default_value = "")]
    pub eviction_soft: String,
    /// How long each soft threshold must hold before a pod is evicted, signal=duration,...
    /// (e.g. memory.available=1m30s).
    #[arg(long, value_delimiter = ',')]
    pub eviction_soft_grace_period: Vec<String>,
    /// Most seconds an evicted pod gets to stop when a soft threshold is met (hard: none).
    #[arg(long, default_value_t = 0)]
    pub eviction_max_pod_grace_period: i64,
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
            sync_frequency: Duration::from_secs(60),
            container_log_max_size: "10Mi".into(),
            container_log_max_files: 5,
            node_lease_duration_seconds: 40,
            cgroup_root: "skiff".into(),
            max_pods: 110,
            kubelet_port: 10250,
            tls_cert_file: None,
            tls_private_key_file: None,
            system_reserved: Vec::new(),
            kube_reserved: Vec::new(),
            eviction_hard: host::DEFAULT_EVICTION_HARD.into(),
            private_registry: None,
            image_gc_high_threshold: 85,
            image_gc_low_threshold: 80,
            eviction_soft: String::new(),
            eviction_soft_grace_period: Vec::new(),
            eviction_max_pod_grace_period: 0,
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

/// Upstream's default ImageMinimumGCAge.
const IMAGE_MINIMUM_GC_AGE: Duration = Duration::from_secs(120);

/// The resources `--system-reserved` and `--kube-reserved` may name (upstream's).
const RESERVABLE: [&str; 4] = ["cpu", "memory", "ephemeral-storage", "pid"];

/// A reservation flag: `k=v` items, each resource once, with a non-negative quantity.
fn reserved(flag: &'static str, items: &[String]) -> Result<BTreeMap<String, Quantity>, Error> {
    let mut out = BTreeMap::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(invalid(flag, format!("{item:?} is not resource=quantity (e.g. cpu=500m,memory=1Gi)")));
        };
        let (k, v) = (k.trim(), v.trim());
        if !RESERVABLE.contains(&k) {
            return Err(invalid(flag, format!("cannot reserve {k:?} (one of {})", RESERVABLE.join(", "))));
        }
        if out.insert(k.to_string(), quantity(flag, v)?).is_some() {
            return Err(invalid(flag, format!("{k} is given twice")));
        }
    }
    Ok(out)
}

impl Opts {
    /// `--container-log-max-size` in bytes and `--container-log-max-files`, validated as upstream.
    pub fn log_rotation(&self) -> Result<(u64, u32), Error> {
        let flag = "container-log-max-size";
        let size = quantity(flag, &self.container_log_max_size)
            .and_then(|q| api::quantity::parse(&q.0).map_err(|_| invalid(flag, "not a quantity")))?
            .value();
        if self.container_log_max_files < 2 {
            return Err(invalid("container-log-max-files", "must be at least 2"));
        }
        Ok((u64::try_from(size).unwrap_or(0), self.container_log_max_files))
    }

    /// The nodes to run, validated; `data_dir` is `--data-dir` (a real node's ephemeral storage
    /// is its filesystem). `runtime_version` is left empty for [`crate::run`] to fill from each
    /// node's runtime.
    pub fn plan(&self, data_dir: &Path) -> Result<Vec<NodeConfig>, Error> {
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
        if let Some(c) = self.pod_cidr.filter(|c| !c.is_ipv4()) {
            return Err(invalid("pod-cidr", format!("{c} is not an IPv4 CIDR")));
        }
        self.log_rotation()?;
        let eviction_hard = host::parse_eviction_hard(&self.eviction_hard).map_err(|m| invalid("eviction-hard", m))?;
        let eviction_soft = host::parse_eviction_hard(&self.eviction_soft).map_err(|m| invalid("eviction-soft", m))?;
        let system_reserved = reserved("system-reserved", &self.system_reserved)?;
        let kube_reserved = reserved("kube-reserved", &self.kube_reserved)?;
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
        let labels = self.labels()?;
        match self.runtime {
            RuntimeKind::Fake => self.plan_hollow(names, labels),
            RuntimeKind::Linux => {
                let reserved = [&system_reserved, &kube_reserved];
                self.plan_linux(base, labels, data_dir, &reserved, eviction_hard, eviction_soft).map(|n| vec![n])
            }
        }
    }

    /// `--image-gc-high-threshold` / `--image-gc-low-threshold`, checked as upstream does.
    fn image_gc(&self) -> Result<ImageGcPolicy, Error> {
        let (high, low) = (self.image_gc_high_threshold, self.image_gc_low_threshold);
        if high > 100 {
            return Err(invalid("image-gc-high-threshold", "must be a percentage (0-100)"));
        }
        if low > 100 || low > high {
            return Err(invalid(
                "image-gc-low-threshold",
                format!("must be a percentage no greater than --image-gc-high-threshold ({high})"),
            ));
        }
        Ok(ImageGcPolicy { high_percent: high, low_percent: low, min_age: IMAGE_MINIMUM_GC_AGE })
    }

    /// `--node-labels`.
    fn labels(&self) -> Result<BTreeMap<String, String>, Error> {
        let mut labels = BTreeMap::new();
        for kv in self.node_labels.iter().filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    labels.insert(k.to_string(), v.to_string());
                }
                _ => return Err(invalid("node-labels", format!("{kv:?} is not key=value"))),
            }
        }
        Ok(labels)
    }

    /// One real node on this host.
    fn plan_linux(
        &self,
        name: String,
        labels: BTreeMap<String, String>,
        data_dir: &Path,
        reserved: &[&BTreeMap<String, Quantity>],
        eviction_hard: Vec<Threshold>,
        eviction_soft: Vec<Threshold>,
    ) -> Result<NodeConfig, Error> {
        if self.count != 1 {
            return Err(invalid("count", "only the fake runtime runs several nodes in one process"));
        }
        let root = self.cgroup_root.trim_matches('/');
        if root.is_empty() || root.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(invalid(
                "cgroup-root",
                format!("{:?} is not a relative cgroup path (e.g. skiff)", self.cgroup_root),
            ));
        }
        if self.max_pods == 0 {
            return Err(invalid("max-pods", "must be at least 1"));
        }
        let image_gc = self.image_gc()?;
        let ip = match self.node_ip {
            Some(ip) => ip,
            None => IpAddr::V4(
                host::primary_ipv4()
                    .ok_or_else(|| invalid("node-ip", "this host has no IPv4 address to default to: give one"))?,
            ),
        };
        let cap = host::capacity(data_dir)?;
        let mut capacity = BTreeMap::new();
        capacity.insert("cpu".to_string(), Quantity(cap.cpus.to_string()));
        capacity.insert("memory".to_string(), object::bytes_quantity(cap.memory_bytes.into()));
        capacity.insert("ephemeral-storage".to_string(), object::bytes_quantity(cap.fs.capacity_bytes.into()));
        capacity.insert("pods".to_string(), Quantity(self.max_pods.to_string()));
        for (page, bytes) in &cap.hugepages {
            let page = object::bytes_quantity((*page).into()).0;
            capacity.insert(format!("hugepages-{page}"), object::bytes_quantity((*bytes).into()));
        }
        let allocatable = object::allocatable(&capacity, reserved, &eviction_hard);
        let info = host::system_info();
        Ok(NodeConfig {
            name,
            ip,
            pod_cidr: self.pod_cidr,
            labels,
            capacity,
            allocatable,
            runtime_version: String::new(),
            kernel_version: info.kernel_version,
            os_image: info.os_image,
            boot_id: info.boot_id,
            machine_id: info.machine_id,
            system_uuid: info.system_uuid,
            pressure: Some(PressureSource {
                fs_path: data_dir.to_path_buf(),
                eviction_hard,
                eviction_soft,
                image_gc: Some(image_gc),
            }),
            kubelet_port: i32::from(self.kubelet_port),
        })
    }

    /// `--count` hollow nodes with the `--fake-*` capacity.
    fn plan_hollow(&self, names: Vec<String>, labels: BTreeMap<String, String>) -> Result<Vec<NodeConfig>, Error> {
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
                Some(c) if self.count == 1 => Some(c),
                Some(c) => Some(c.subnet(24, u128::from(i)).ok_or_else(|| {
                    invalid("pod-cidr", format!("{c} has no /24 number {i} for --count {}", self.count))
                })?),
            };
            out.push(NodeConfig {
                machine_id: object::hollow_machine_id(&name),
                system_uuid: object::hollow_system_uuid(&name),
                name,
                ip,
                pod_cidr,
                labels: labels.clone(),
                capacity: capacity.clone(),
                allocatable: capacity.clone(),
                runtime_version: String::new(),
                kernel_version: kernel_version.clone(),
                os_image: "skiff hollow node".into(),
                boot_id: boot_id.clone(),
                pressure: None,
                kubelet_port: i32::from(self.kubelet_port),
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

    fn data_dir() -> std::path::PathBuf {
        std::env::temp_dir().join("skiff-plan-test")
    }

    fn fake(count: u32) -> Opts {
        Opts { node_name: Some("hollow".into()), runtime: RuntimeKind::Fake, count, ..Default::default() }
    }

    #[test]
    fn plans_names_ips_and_cidrs() {
        let mut o = fake(3);
        o.pod_cidr = Some("10.100.0.0/16".parse().expect("cidr"));
        o.node_labels = vec!["zone=a".into(), "tier=".into()];
        let plan = o.plan(&data_dir()).expect("plan");
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
        let caps = &exp.plan(&data_dir()).expect("plan")[0].capacity;
        assert_eq!(caps.get("memory").map(|q| q.0.as_str()), Some("16e9"));

        let single = fake(1).plan(&data_dir()).expect("plan");
        assert_eq!(single[0].name, "hollow-0", "hollow nodes are numbered also when there is one");
    }

    #[test]
    fn rejects_bad_flags() {
        let linux =
            |o: Opts| Opts { runtime: RuntimeKind::Linux, node_ip: Some("192.0.2.7".parse().expect("ip")), ..o };
        let cases: Vec<(Opts, &str)> = vec![
            (linux(fake(2)), "count"),
            (linux(Opts { max_pods: 0, ..fake(1) }), "max-pods"),
            (linux(Opts { cgroup_root: "a/../b".into(), ..fake(1) }), "cgroup-root"),
            (linux(Opts { cgroup_root: "/".into(), ..fake(1) }), "cgroup-root"),
            (linux(Opts { image_gc_high_threshold: 101, ..fake(1) }), "image-gc-high-threshold"),
            (linux(Opts { image_gc_low_threshold: 90, ..fake(1) }), "image-gc-low-threshold"),
            (
                linux(Opts { image_gc_high_threshold: 50, image_gc_low_threshold: 60, ..fake(1) }),
                "image-gc-low-threshold",
            ),
            (Opts { eviction_hard: "memory.available>1Gi".into(), ..fake(1) }, "eviction-hard"),
            (Opts { eviction_hard: "disk.available<1Gi".into(), ..fake(1) }, "eviction-hard"),
            (Opts { eviction_soft: "memory.available=1Gi".into(), ..fake(1) }, "eviction-soft"),
            (Opts { system_reserved: vec!["gpu=1".into()], ..fake(1) }, "system-reserved"),
            (Opts { system_reserved: vec!["cpu=-1".into()], ..fake(1) }, "system-reserved"),
            (Opts { kube_reserved: vec!["memory".into()], ..fake(1) }, "kube-reserved"),
            (Opts { kube_reserved: vec!["cpu=1".into(), "cpu=2".into()], ..fake(1) }, "kube-reserved"),
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
            match o.plan(&data_dir()) {
                Err(Error::InvalidFlag { flag: f, .. }) => assert_eq!(f, flag),
                other => panic!("{flag}: {other:?}"),
            }
        }
    }

    #[test]
    fn plans_a_real_node_from_the_host() {
        let dir = tempfile::tempdir().expect("temp dir");
        let o = Opts {
            node_name: Some("worker-1".into()),
            node_ip: Some("192.0.2.7".parse().expect("ip")),
            runtime: RuntimeKind::Linux,
            max_pods: 30,
            system_reserved: vec!["cpu=100m".into(), "memory=64Mi".into(), "pid=100".into()],
            kube_reserved: vec!["ephemeral-storage=1Mi".into()],
            pod_cidr: Some("10.244.9.0/24".parse().expect("cidr")),
            ..Default::default()
        };
        // The data dir need not exist yet: its filesystem is that of its nearest ancestor.
        let plan = o.plan(&dir.path().join("data")).expect("plan");
        assert_eq!(plan.len(), 1);
        let n = &plan[0];
        assert_eq!(n.name, "worker-1", "a real node is not numbered");
        assert_eq!(n.ip.to_string(), "192.0.2.7");
        assert_eq!(n.pod_cidr.map(|c| c.to_string()).as_deref(), Some("10.244.9.0/24"));
        for key in ["cpu", "memory", "ephemeral-storage", "pods"] {
            assert!(n.capacity.contains_key(key), "capacity has {key}: {:?}", n.capacity);
        }
        assert_eq!(n.capacity.get("pods").map(|q| q.0.as_str()), Some("30"));
        assert!(n.capacity.keys().any(|k| k.starts_with("hugepages-")), "{:?}", n.capacity);
        assert_eq!(n.capacity.keys().collect::<Vec<_>>(), n.allocatable.keys().collect::<Vec<_>>());
        let value = |q: &Quantity, key: &str| {
            let q = api::quantity::parse(&q.0).expect("a quantity");
            if key == "cpu" {
                q.milli_value()
            } else {
                q.value()
            }
        };
        for (key, cap) in &n.capacity {
            let alloc = &n.allocatable[key];
            assert!(value(alloc, key) <= value(cap, key), "{key}: allocatable {alloc:?} > capacity {cap:?}");
        }
        let mem = |m: &BTreeMap<String, Quantity>| value(&m["memory"], "memory");
        assert!(mem(&n.capacity) - mem(&n.allocatable) >= (64 << 20) + (100 << 20), "reserved and eviction");
        assert_eq!(
            value(&n.capacity["cpu"], "cpu") - value(&n.allocatable["cpu"], "cpu"),
            100,
            "only system-reserved takes cpu"
        );
        assert!(!n.kernel_version.is_empty() && !n.boot_id.is_empty());
        assert_ne!(n.os_image, "skiff hollow node");
        let source = n.pressure.as_ref().expect("a real node measures pressure");
        assert_eq!(source.eviction_hard.len(), 4, "the default thresholds");

        // Without --node-ip: the host's primary address (every test host has one).
        let auto = Opts { node_ip: None, ..o }.plan(dir.path()).expect("plan");
        assert!(!auto[0].ip.is_loopback() && !auto[0].ip.is_unspecified(), "{}", auto[0].ip);
    }
}
