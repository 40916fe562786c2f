//! The Node object a kubelet registers and the status it reports (pure).

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::host::{Pressure, PressureSource, Signal, Threshold};
use crate::pods::status::api_time;
use crate::runtime::ImageInfo;
use api::cidr::Cidr;

/// The version every skiff kubelet reports.
pub const KUBELET_VERSION: &str = "v1.33.0-skiff";
/// The kubelet's default port (DESIGN §10); a node advertises its `--kubelet-port` in
/// `daemonEndpoints` ([`NodeConfig::kubelet_port`]).
pub const KUBELET_PORT: i32 = 10250;
/// Most images `status.images` lists, the largest first (upstream's `nodeStatusMaxImages`).
pub const MAX_IMAGES: usize = 50;
/// Most names listed per image (upstream's `MaxNamesPerImageInNodeStatus`).
pub const MAX_NAMES_PER_IMAGE: usize = 5;

/// Everything that describes one node this process runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub ip: IpAddr,
    /// Used when the cluster does not assign one.
    pub pod_cidr: Option<Cidr>,
    /// Extra labels (`--node-labels`).
    pub labels: BTreeMap<String, String>,
    pub capacity: BTreeMap<String, Quantity>,
    /// Capacity less what is reserved ([`allocatable`]); a hollow node's is its capacity.
    pub allocatable: BTreeMap<String, Quantity>,
    /// `name://version` of the runtime.
    pub runtime_version: String,
    pub kernel_version: String,
    pub os_image: String,
    pub boot_id: String,
    pub machine_id: String,
    pub system_uuid: String,
    /// Where a real node's pressure conditions are measured; None for a hollow node (never under
    /// pressure).
    pub pressure: Option<PressureSource>,
    /// The port of the kubelet's API (`--kubelet-port`), advertised in `daemonEndpoints`.
    pub kubelet_port: i32,
}

/// What the kubelet measured for one status update.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub pressure: Pressure,
    /// The runtime's images; None when unknown (the status leaves them as they are).
    pub images: Option<Vec<ContainerImage>>,
}

/// `kubernetes.io/arch` for the architecture this binary runs on.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The labels the kubelet sets on its Node.
pub fn labels(cfg: &NodeConfig) -> BTreeMap<String, String> {
    let mut l = cfg.labels.clone();
    l.insert("kubernetes.io/hostname".into(), cfg.name.clone());
    l.insert("kubernetes.io/os".into(), "linux".into());
    l.insert("kubernetes.io/arch".into(), go_arch().into());
    l.insert("beta.kubernetes.io/os".into(), "linux".into());
    l.insert("beta.kubernetes.io/arch".into(), go_arch().into());
    l
}

/// The node's conditions as of `now` under `pressure` (reasons and messages as upstream's),
/// keeping each one's `lastTransitionTime` from `existing` while its status is unchanged.
pub fn conditions(existing: Option<&Node>, pressure: Pressure, now: Timestamp) -> Vec<NodeCondition> {
    let old: &[NodeCondition] = existing.and_then(|n| n.status.as_ref()?.conditions.as_deref()).unwrap_or(&[]);
    let now = api_time(now);
    let memory = if pressure.memory {
        ("MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
    } else {
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available")
    };
    let disk = if pressure.disk {
        ("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
    } else {
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
    };
    let pid = if pressure.pid {
        ("PIDPressure", "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
    } else {
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available")
    };
    [memory, disk, pid, ("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
        .into_iter()
        .map(|(ty, status, reason, message)| {
            let transition = old
                .iter()
                .find(|c| c.type_ == ty && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            NodeCondition {
                type_: ty.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: Some(transition),
            }
        })
        .collect()
}

/// The full status the kubelet reports.
pub fn status(cfg: &NodeConfig, existing: Option<&Node>, observed: &Observed, now: Timestamp) -> NodeStatus {
    NodeStatus {
        capacity: Some(cfg.capacity.clone()),
        allocatable: Some(cfg.allocatable.clone()),
        conditions: Some(conditions(existing, observed.pressure, now)),
        images: observed.images.clone(),
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: cfg.ip.to_string() },
            NodeAddress { type_: "Hostname".into(), address: cfg.name.clone() },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: cfg.kubelet_port }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: go_arch().into(),
            boot_id: cfg.boot_id.clone(),
            container_runtime_version: cfg.runtime_version.clone(),
            kernel_version: cfg.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: cfg.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: cfg.os_image.clone(),
            system_uuid: cfg.system_uuid.clone(),
            swap: None,
        }),
        ..Default::default()
    }
}

/// A hollow node's machine id: stable for its name.
pub fn hollow_machine_id(name: &str) -> String {
    crate::runtime::fake::stable_digest(name)[..32].to_string()
}

/// A hollow node's system UUID: stable for its name.
pub fn hollow_system_uuid(name: &str) -> String {
    let h = crate::runtime::fake::stable_digest(&format!("uuid {name}"));
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// `status.images`: the largest [`MAX_IMAGES`] images, each with its digests then its tags (at
/// most [`MAX_NAMES_PER_IMAGE`] names), as upstream's image setter.
pub fn images(mut list: Vec<ImageInfo>) -> Vec<ContainerImage> {
    list.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.id.cmp(&b.id)));
    list.into_iter()
        .take(MAX_IMAGES)
        .map(|i| ContainerImage {
            names: Some(i.repo_digests.into_iter().chain(i.repo_tags).take(MAX_NAMES_PER_IMAGE).collect()),
            size_bytes: Some(i64::try_from(i.size).unwrap_or(i64::MAX)),
        })
        .collect()
}

/// A byte count in canonical binary form (`16363420Ki`, `2Gi`, `1000`).
pub fn bytes_quantity(bytes: i128) -> Quantity {
    const SUFFIXES: [(&str, u32); 6] = [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
    if bytes != 0 {
        for (suffix, shift) in SUFFIXES {
            if bytes % (1i128 << shift) == 0 {
                return Quantity(format!("{}{suffix}", bytes >> shift));
            }
        }
    }
    Quantity(bytes.to_string())
}

/// A CPU amount from millicores (`4`, `3500m`).
pub fn cpu_quantity(milli: i128) -> Quantity {
    if milli % 1000 == 0 {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}

/// A resource amount in the unit it is counted in: millicores for cpu, else whole units.
fn units(resource: &str, q: &Quantity) -> Option<i128> {
    let q = api::quantity::parse(&q.0).ok()?;
    Some(i128::from(if resource == "cpu" { q.milli_value() } else { q.value() }))
}

/// Allocatable: capacity less `reserved` (`--system-reserved` and `--kube-reserved`), the hard
/// eviction thresholds of memory.available (from memory) and nodefs.available (from
/// ephemeral-storage), and the huge pages (from memory), never below zero — upstream's
/// `GetNodeAllocatableReservation` and allocatable setter. Resources without a reservation keep
/// their capacity as written.
pub fn allocatable(
    capacity: &BTreeMap<String, Quantity>,
    reserved: &[&BTreeMap<String, Quantity>],
    eviction_hard: &[Threshold],
) -> BTreeMap<String, Quantity> {
    let hugepages: i128 =
        capacity.iter().filter(|(k, _)| k.starts_with("hugepages-")).filter_map(|(k, q)| units(k, q)).sum();
    capacity
        .iter()
        .map(|(resource, cap)| {
            let Some(cap_units) = units(resource, cap) else { return (resource.clone(), cap.clone()) };
            let mut reserve: i128 = reserved.iter().filter_map(|r| units(resource, r.get(resource)?)).sum();
            for t in eviction_hard {
                let applies = matches!(
                    (t.signal, resource.as_str()),
                    (Signal::MemoryAvailable, "memory") | (Signal::NodeFsAvailable, "ephemeral-storage")
                );
                if applies {
                    reserve += i128::from(t.amount(u64::try_from(cap_units).unwrap_or(0)));
                }
            }
            if resource == "memory" {
                reserve += hugepages;
            }
            if reserve == 0 {
                return (resource.clone(), cap.clone());
            }
            let left = (cap_units - reserve).max(0);
            let q = match resource.as_str() {
                "cpu" => cpu_quantity(left),
                "memory" | "ephemeral-storage" => bytes_quantity(left),
                r if r.starts_with("hugepages-") => bytes_quantity(left),
                _ => Quantity(left.to_string()),
            };
            (resource.clone(), q)
        })
        .collect()
}

/// The Node to create.
pub fn node(cfg: &NodeConfig, observed: &Observed, now: Timestamp) -> Node {
    Node {
        metadata: ObjectMeta { name: Some(cfg.name.clone()), labels: Some(labels(cfg)), ..Default::default() },
        spec: Some(NodeSpec {
            pod_cidr: cfg.pod_cidr.map(|c| c.to_string()),
            pod_cidrs: cfg.pod_cidr.map(|c| vec![c.to_string()]),
            ..Default::default()
        }),
        status: Some(status(cfg, None, observed, now)),
    }
}

/// The node's podCIDR, if assigned and an IPv4 CIDR this kubelet can use.
pub fn pod_cidr(node: &Node) -> Option<Cidr> {
    let spec = node.spec.as_ref()?;
    let first = spec.pod_cidr.as_deref().or_else(|| spec.pod_cidrs.as_ref()?.first().map(String::as_str))?;
    Cidr::parse_ipv4(first).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> NodeConfig {
        let capacity: BTreeMap<String, Quantity> =
            [("cpu".to_string(), Quantity("4".into())), ("pods".to_string(), Quantity("110".into()))].into();
        NodeConfig {
            name: "hollow-0".into(),
            ip: "10.0.0.1".parse().expect("ip"),
            pod_cidr: Some("10.244.7.0/24".parse().expect("cidr")),
            labels: [("zone".to_string(), "a".to_string())].into(),
            allocatable: capacity.clone(),
            capacity,
            runtime_version: "skiff-fake://0.1".into(),
            kernel_version: "6.1.0".into(),
            os_image: "skiff hollow node".into(),
            boot_id: "b".into(),
            machine_id: hollow_machine_id("hollow-0"),
            system_uuid: hollow_system_uuid("hollow-0"),
            pressure: None,
            kubelet_port: 12345,
        }
    }

    fn q(map: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        map.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
    }

    #[test]
    fn registers_with_labels_capacity_and_ready() {
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let n = serde_json::to_value(node(&cfg(), &Observed::default(), now)).expect("json");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "hollow-0");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/os"], "linux");
        assert_eq!(n["metadata"]["labels"]["zone"], "a");
        assert_eq!(n["spec"]["podCIDR"], "10.244.7.0/24");
        assert_eq!(n["status"]["capacity"], json!({"cpu": "4", "pods": "110"}));
        assert_eq!(n["status"]["allocatable"], n["status"]["capacity"]);
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0-skiff");
        assert_eq!(n["status"]["nodeInfo"]["containerRuntimeVersion"], "skiff-fake://0.1");
        assert_eq!(n["status"]["addresses"][0], json!({"type": "InternalIP", "address": "10.0.0.1"}));
        assert_eq!(n["status"]["daemonEndpoints"], json!({"kubeletEndpoint": {"Port": 12345}}));
        let ready = &n["status"]["conditions"][3];
        assert_eq!(
            ready,
            &json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status", "lastHeartbeatTime": "2023-11-14T22:13:20Z",
                "lastTransitionTime": "2023-11-14T22:13:20Z"})
        );
    }

    #[test]
    fn heartbeats_keep_transition_times_unless_status_changed() {
        let t0 = Timestamp::from_second(1_700_000_000).expect("time");
        let t1 = Timestamp::from_second(1_700_000_060).expect("time");
        let mut existing = node(&cfg(), &Observed::default(), t0);
        let conds = conditions(Some(&existing), Pressure::default(), t1);
        assert!(conds.iter().all(|c| c.last_transition_time == Some(api_time(t0))));
        assert!(conds.iter().all(|c| c.last_heartbeat_time == Some(api_time(t1))));
        // The node lifecycle controller marked it Unknown: Ready=True is a transition again.
        if let Some(c) = existing.status.as_mut().and_then(|s| s.conditions.as_mut()).and_then(|c| c.get_mut(3)) {
            c.status = "Unknown".into();
        }
        let conds = conditions(Some(&existing), Pressure::default(), t1);
        assert_eq!(conds[3].last_transition_time, Some(api_time(t1)));
        assert_eq!(conds[0].last_transition_time, Some(api_time(t0)));
    }

    #[test]
    fn pressure_flips_its_condition_with_upstream_reasons() {
        let t0 = Timestamp::from_second(1_700_000_000).expect("time");
        let t1 = Timestamp::from_second(1_700_000_010).expect("time");
        let existing = node(&cfg(), &Observed::default(), t0);
        let conds = conditions(Some(&existing), Pressure { memory: true, disk: false, pid: true }, t1);
        let got: Vec<(&str, &str, &str)> = conds
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(
            got,
            [
                ("MemoryPressure", "True", "KubeletHasInsufficientMemory"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "True", "KubeletHasInsufficientPID"),
                ("Ready", "True", "KubeletReady"),
            ]
        );
        assert_eq!(conds[0].last_transition_time, Some(api_time(t1)), "a change of status is a transition");
        assert_eq!(conds[1].last_transition_time, Some(api_time(t0)));
    }

    #[test]
    fn allocatable_is_capacity_less_reservations_and_hard_eviction() {
        let capacity = q(&[
            ("cpu", "4"),
            ("memory", "16363420Ki"),
            ("ephemeral-storage", "100000Ki"),
            ("pods", "110"),
            ("hugepages-2Mi", "8Mi"),
            ("hugepages-1Gi", "0"),
        ]);
        let system = q(&[("cpu", "500m"), ("memory", "1Gi"), ("pid", "1000")]);
        let kube = q(&[("cpu", "100m"), ("ephemeral-storage", "1Gi")]);
        let eviction = crate::node::host::parse_eviction_hard(crate::node::host::DEFAULT_EVICTION_HARD).expect("parse");
        let got = allocatable(&capacity, &[&system, &kube], &eviction);
        // memory: 16363420Ki - 1Gi - 100Mi (memory.available) - 8Mi (huge pages).
        let memory = 16_363_420i128 * 1024 - (1 << 30) - (100 << 20) - (8 << 20);
        let want = q(&[
            ("cpu", "3400m"),
            ("memory", &bytes_quantity(memory).0),
            // ephemeral-storage: 1Gi reserved is more than there is: 0, never negative.
            ("ephemeral-storage", "0"),
            ("pods", "110"),
            ("hugepages-2Mi", "8Mi"),
            ("hugepages-1Gi", "0"),
        ]);
        assert_eq!(got, want);
        assert_eq!(bytes_quantity(memory).0, "15204252Ki");
        // Only the hard eviction thresholds: nodefs 10% of ephemeral-storage, rounded down.
        let plain = allocatable(&q(&[("ephemeral-storage", "100000Ki"), ("memory", "1Gi")]), &[], &eviction);
        assert_eq!(plain, q(&[("ephemeral-storage", "90000Ki"), ("memory", "924Mi")]));
        // Nothing reserved: capacity as written, except the huge pages, which always come off memory.
        let bare = allocatable(&capacity, &[], &[]);
        assert_eq!(bare.get("memory"), Some(&Quantity("16355228Ki".into())));
        assert_eq!(bare.get("cpu"), Some(&Quantity("4".into())));
    }

    #[test]
    fn quantities_are_canonical() {
        assert_eq!(bytes_quantity(0).0, "0");
        assert_eq!(bytes_quantity(1000).0, "1000");
        assert_eq!(bytes_quantity(2 << 30).0, "2Gi");
        assert_eq!(bytes_quantity(1536).0, "1536");
        assert_eq!(bytes_quantity(3 << 10).0, "3Ki");
        assert_eq!(cpu_quantity(4000).0, "4");
        assert_eq!(cpu_quantity(3500).0, "3500m");
    }

    #[test]
    fn images_largest_first_digests_then_tags() {
        let image = |id: &str, size: u64, tags: &[&str], digests: &[&str]| ImageInfo {
            id: id.into(),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: digests.iter().map(|d| d.to_string()).collect(),
            size,
        };
        let mut list: Vec<ImageInfo> = (0..60).map(|i| image(&format!("sha256:{i:02}"), i, &[], &[])).collect();
        list.push(image("sha256:big", 1 << 30, &["a:1", "a:2", "a:3", "a:4", "a:5"], &["a@sha256:aa"]));
        let got = images(list);
        assert_eq!(got.len(), MAX_IMAGES);
        assert_eq!(got[0].size_bytes, Some(1 << 30));
        assert_eq!(got[0].names.as_deref(), Some(&["a@sha256:aa", "a:1", "a:2", "a:3", "a:4"].map(String::from)[..]));
        assert_eq!(got[1].size_bytes, Some(59));
        assert_eq!(got[49].size_bytes, Some(11), "the smallest are left out");
        let json = serde_json::to_value(&got[0]).expect("json");
        assert_eq!(json["sizeBytes"], 1 << 30);
    }

    #[test]
    fn pod_cidr_from_spec() {
        let n = |spec: serde_json::Value| -> Node {
            serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": spec})).expect("node")
        };
        assert_eq!(
            pod_cidr(&n(json!({"podCIDR": "10.244.1.0/24"}))).map(|c| c.to_string()).as_deref(),
            Some("10.244.1.0/24")
        );
        assert_eq!(
            pod_cidr(&n(json!({"podCIDRs": ["10.244.2.0/24"]}))).map(|c| c.to_string()).as_deref(),
            Some("10.244.2.0/24")
        );
        assert_eq!(pod_cidr(&n(json!({}))), None);
        assert_eq!(pod_cidr(&n(json!({"podCIDR": "fd00::/64"}))), None);
    }
}
