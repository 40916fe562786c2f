//! Which pods back a Service, and how (shared by the Endpoints and EndpointSlice controllers):
//! selector matching, readiness, the pod's address, and resolving a Service port's targetPort
//! against the pod's containers (upstream `pkg/controller/util/endpoint`), and which Services a
//! pod change concerns ([`services_of`]).

pub mod trigger;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::HashSet;

use client_runtime::{Change, ObjectRef, Store};

/// The protocol a port has when none is given.
const DEFAULT_PROTOCOL: &str = "TCP";

/// Whether the Service gets endpoints from a controller at all: it must select pods and not be
/// an ExternalName. The `kubernetes` Service in `default` is the API server's own.
pub fn managed(svc: &Service) -> bool {
    let Some(spec) = &svc.spec else { return false };
    let is_apiserver =
        svc.metadata.namespace.as_deref() == Some("default") && svc.metadata.name.as_deref() == Some("kubernetes");
    spec.selector.is_some() && spec.type_.as_deref() != Some("ExternalName") && !is_apiserver
}

/// Whether `pod`'s labels satisfy the Service's (equality-based) selector.
pub fn selects(svc: &Service, pod: &Pod) -> bool {
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else { return false };
    if svc.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pods of the Service's namespace its selector matches, from the shared cache.
pub fn selected_pods(pods: &Store<Pod>, svc: &Service) -> Vec<std::sync::Arc<Pod>> {
    let mut selected: Vec<_> = pods.state().into_iter().filter(|p| selects(svc, p)).collect();
    selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    selected
}

pub use client_runtime::pods::{is_ready, is_terminating};

/// Upstream `ShouldPodBeInEndpoints`: not finished (Succeeded/Failed), has an IP, and is not
/// terminating unless terminating pods are wanted.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    if pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || !is_terminating(pod)
}

/// Every IP of the pod: `status.podIPs`, or `status.podIP` when that list is empty.
pub fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(status) = &pod.status else { return Vec::new() };
    let ips: Vec<String> =
        status.pod_ips.iter().flatten().map(|ip| ip.ip.clone()).filter(|ip| !ip.is_empty()).collect();
    if !ips.is_empty() {
        return ips;
    }
    status.pod_ip.iter().filter(|ip| !ip.is_empty()).cloned().collect()
}

/// The pod's IPs of one family (`IPv4` or `IPv6`), normalised.
pub fn pod_ips_of_family(pod: &Pod, family: IpFamily) -> Vec<String> {
    pod_ips(pod)
        .iter()
        .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
        .filter(|ip| IpFamily::of(ip) == family)
        .map(|ip| ip.to_string())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(ip: &std::net::IpAddr) -> IpFamily {
        if ip.is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        }
    }

    /// The EndpointSlice addressType of this family.
    pub fn address_type(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }
}

/// The IP families a Service serves: `spec.ipFamilies`, else the family of its clusterIP, else
/// (a headless Service the API server has not defaulted) both.
pub fn service_families(svc: &Service) -> Vec<IpFamily> {
    let Some(spec) = &svc.spec else { return vec![IpFamily::V4] };
    let mut families: Vec<IpFamily> = spec
        .ip_families
        .iter()
        .flatten()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some(IpFamily::V4),
            "IPv6" => Some(IpFamily::V6),
            _ => None,
        })
        .collect();
    families.dedup();
    if !families.is_empty() {
        return families;
    }
    match spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
        Some(ip) => vec![IpFamily::of(&ip)],
        None => vec![IpFamily::V4, IpFamily::V6],
    }
}

/// Whether the Service has a cluster IP (is not headless).
pub fn is_service_ip_set(svc: &Service) -> bool {
    let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
    !ip.is_empty() && ip != "None"
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false)
}

/// A pod gets its hostname published when its subdomain names the Service.
pub fn hostname_for(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_ref().filter(|h| !h.is_empty())?;
    let same_ns = pod.metadata.namespace == svc.metadata.namespace;
    (same_ns && spec.subdomain.is_some() && spec.subdomain == svc.metadata.name).then(|| hostname.clone())
}

pub fn port_protocol(port: &ServicePort) -> &str {
    port.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL)
}

/// Upstream `FindPort`: a numeric targetPort is used as is (no targetPort means the port
/// itself); a named one is looked up, with the same protocol, among the ports of the pod's
/// containers and then of its sidecars (init containers with restartPolicy Always).
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let name = match &port.target_port {
        None => return Some(port.port),
        Some(IntOrString::Int(n)) => return Some(*n),
        Some(IntOrString::String(s)) => match s.parse::<i32>() {
            Ok(n) => return Some(n),
            Err(_) => s,
        },
    };
    let spec = pod.spec.as_ref()?;
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers.iter().chain(sidecars).flat_map(|c| c.ports.iter().flatten()).find_map(|p| {
        let protocol = p.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL);
        (p.name.as_deref() == Some(name.as_str()) && protocol == port_protocol(port)).then_some(p.container_port)
    })
}

/// The Services a pod change concerns (upstream `getPodServiceMemberships` of the old and the new
/// pod): those selecting the pod as it is now, and those that selected it before.
pub fn services_of(services: &Store<Service>, change: &Change<Pod>) -> Vec<ObjectRef<Service>> {
    let selecting = |pod: &Pod| -> HashSet<ObjectRef<Service>> {
        services.state().iter().filter(|s| selects(s, pod)).map(|s| ObjectRef::from_obj(s.as_ref())).collect()
    };
    let mut out = selecting(change.object());
    if let Change::Applied { previous: Some(old), object } = change {
        if old.metadata.labels != object.metadata.labels {
            out.extend(selecting(old));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("test pod")
    }

    fn svc_port(v: serde_json::Value) -> ServicePort {
        serde_json::from_value(v).expect("test port")
    }

    #[test]
    fn port_resolution() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "a", "ports": [{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]},
                    {"name": "b", "ports": [{"name": "metrics", "containerPort": 9090}]}
                ],
                "initContainers": [
                    {"name": "side", "restartPolicy": "Always", "ports": [{"name": "proxy", "containerPort": 15001}]},
                    {"name": "init", "ports": [{"name": "setup", "containerPort": 7000}]}
                ]
            }
        }));
        let cases = [
            (json!({"port": 80, "targetPort": 8080}), Some(8080)),
            (json!({"port": 80}), Some(80)),
            (json!({"port": 80, "targetPort": "http"}), Some(8080)),
            (json!({"port": 80, "targetPort": "metrics"}), Some(9090)),
            (json!({"port": 53, "targetPort": "dns"}), None), // TCP service port, UDP container port
            (json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}), Some(53)),
            (json!({"port": 80, "targetPort": "proxy"}), Some(15001)),
            (json!({"port": 80, "targetPort": "setup"}), None), // plain init containers do not count
            (json!({"port": 80, "targetPort": "nope"}), None),
        ];
        for (port, want) in cases {
            assert_eq!(find_port(&p, &svc_port(port.clone())), want, "{port}");
        }
    }

    #[test]
    fn eligibility() {
        let base = json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}});
        assert!(should_be_in_endpoints(&pod(base.clone()), false));
        let no_ip = json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}});
        assert!(!should_be_in_endpoints(&pod(no_ip), true));
        let done = json!({"metadata": {"name": "p"}, "status": {"phase": "Succeeded", "podIP": "10.0.0.1"}});
        assert!(!should_be_in_endpoints(&pod(done), true));
        let terminating = json!({"metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}});
        assert!(!should_be_in_endpoints(&pod(terminating.clone()), false));
        assert!(should_be_in_endpoints(&pod(terminating), true));
    }

    #[test]
    fn families_and_ips() {
        let p = pod(json!({"metadata": {"name": "p"},
            "status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}}));
        assert_eq!(pod_ips_of_family(&p, IpFamily::V4), vec!["10.0.0.1"]);
        assert_eq!(pod_ips_of_family(&p, IpFamily::V6), vec!["fd00::1"]);
        let svc: Service = serde_json::from_value(json!({"spec": {"clusterIP": "None"}})).expect("svc");
        assert_eq!(service_families(&svc), vec![IpFamily::V4, IpFamily::V6]);
        let svc: Service = serde_json::from_value(json!({"spec": {"clusterIP": "10.96.0.5"}})).expect("svc");
        assert_eq!(service_families(&svc), vec![IpFamily::V4]);
    }
}
