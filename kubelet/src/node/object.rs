//! The Node object a kubelet registers and the status it reports (pure).

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::pods::status::api_time;
use api::cidr::Cidr;

/// The version every skiff kubelet reports.
pub const KUBELET_VERSION: &str = "v1.33.0-skiff";
/// The kubelet's port, as advertised in `daemonEndpoints` (DESIGN §10).
pub const KUBELET_PORT: i32 = 10250;

/// Everything that describes one node this process runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub ip: IpAddr,
    /// Used when the cluster does not assign one.
    pub pod_cidr: Option<Cidr>,
    /// Extra labels (`--node-labels`).
    pub labels: BTreeMap<String, String>,
    /// Capacity, also reported as allocatable.
    pub capacity: BTreeMap<String, Quantity>,
    /// `name://version` of the runtime.
    pub runtime_version: String,
    pub kernel_version: String,
    pub os_image: String,
    pub boot_id: String,
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

/// The node's conditions as of `now`, keeping each one's `lastTransitionTime` from `existing`
/// while its status is unchanged.
pub fn conditions(existing: Option<&Node>, now: Timestamp) -> Vec<NodeCondition> {
    let old: &[NodeCondition] = existing.and_then(|n| n.status.as_ref()?.conditions.as_deref()).unwrap_or(&[]);
    let now = api_time(now);
    [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
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
pub fn status(cfg: &NodeConfig, existing: Option<&Node>, now: Timestamp) -> NodeStatus {
    NodeStatus {
        capacity: Some(cfg.capacity.clone()),
        allocatable: Some(cfg.capacity.clone()),
        conditions: Some(conditions(existing, now)),
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: cfg.ip.to_string() },
            NodeAddress { type_: "Hostname".into(), address: cfg.name.clone() },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: KUBELET_PORT }) }),
        node_info: Some(NodeSystemInfo {
            architecture: go_arch().into(),
            boot_id: cfg.boot_id.clone(),
            container_runtime_version: cfg.runtime_version.clone(),
            kernel_version: cfg.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: crate::runtime::fake::stable_digest(&cfg.name)[..32].to_string(),
            operating_system: "linux".into(),
            os_image: cfg.os_image.clone(),
            system_uuid: system_uuid(&cfg.name),
            swap: None,
        }),
        ..Default::default()
    }
}

fn system_uuid(name: &str) -> String {
    let h = crate::runtime::fake::stable_digest(&format!("uuid {name}"));
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The Node to create.
pub fn node(cfg: &NodeConfig, now: Timestamp) -> Node {
    Node {
        metadata: ObjectMeta { name: Some(cfg.name.clone()), labels: Some(labels(cfg)), ..Default::default() },
        spec: Some(NodeSpec {
            pod_cidr: cfg.pod_cidr.map(|c| c.to_string()),
            pod_cidrs: cfg.pod_cidr.map(|c| vec![c.to_string()]),
            ..Default::default()
        }),
        status: Some(status(cfg, None, now)),
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
        NodeConfig {
            name: "hollow-0".into(),
            ip: "10.0.0.1".parse().expect("ip"),
            pod_cidr: Some("10.244.7.0/24".parse().expect("cidr")),
            labels: [("zone".to_string(), "a".to_string())].into(),
            capacity: [("cpu".to_string(), Quantity("4".into())), ("pods".to_string(), Quantity("110".into()))].into(),
            runtime_version: "skiff-fake://0.1".into(),
            kernel_version: "6.1.0".into(),
            os_image: "skiff hollow node".into(),
            boot_id: "b".into(),
        }
    }

    #[test]
    fn registers_with_labels_capacity_and_ready() {
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let n = serde_json::to_value(node(&cfg(), now)).expect("json");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "hollow-0");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/os"], "linux");
        assert_eq!(n["metadata"]["labels"]["zone"], "a");
        assert_eq!(n["spec"]["podCIDR"], "10.244.7.0/24");
        assert_eq!(n["status"]["capacity"], json!({"cpu": "4", "pods": "110"}));
        assert_eq!(n["status"]["allocatable"], n["status"]["capacity"]);
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0-skiff");
        assert_eq!(n["status"]["nodeInfo"]["containerRuntimeVersion"], "skiff-fake://0.1");
        assert_eq!(n["status"]["addresses"][0], json!({"type": "InternalIP", "address": "10.0.0.1"}));
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
        let mut existing = node(&cfg(), t0);
        let conds = conditions(Some(&existing), t1);
        assert!(conds.iter().all(|c| c.last_transition_time == Some(api_time(t0))));
        assert!(conds.iter().all(|c| c.last_heartbeat_time == Some(api_time(t1))));
        // The node lifecycle controller marked it Unknown: Ready=True is a transition again.
        if let Some(c) = existing.status.as_mut().and_then(|s| s.conditions.as_mut()).and_then(|c| c.get_mut(3)) {
            c.status = "Unknown".into();
        }
        let conds = conditions(Some(&existing), t1);
        assert_eq!(conds[3].last_transition_time, Some(api_time(t1)));
        assert_eq!(conds[0].last_transition_time, Some(api_time(t0)));
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
