//! What a Service's EndpointSlices should contain (upstream endpointslice `utils.go`): one
//! endpoint per eligible pod with its conditions, the ports resolved for that pod, and the
//! labels every slice carries.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

use crate::service_endpoints::{self as pods, IpFamily};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Identity of an endpoint across syncs (upstream `hashEndpoint`): its addresses, hostname and
/// the pod it points at. Everything else about it may change in place.
pub type EndpointKey = (Vec<String>, Option<String>, Option<String>, Option<String>);

/// A set of ports in canonical order (upstream `PortMapKey`): pods resolving a Service's ports
/// to the same numbers share slices.
pub type PortsKey = Vec<(Option<String>, Option<i32>, Option<String>, Option<String>)>;

pub fn endpoint_key(ep: &Endpoint) -> EndpointKey {
    let mut addresses = ep.addresses.clone();
    addresses.sort();
    let target = ep.target_ref.as_ref();
    (addresses, ep.hostname.clone(), target.and_then(|t| t.namespace.clone()), target.and_then(|t| t.name.clone()))
}

pub fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    let mut key: PortsKey =
        ports.iter().map(|p| (p.name.clone(), p.port, p.protocol.clone(), p.app_protocol.clone())).collect();
    key.sort();
    key
}

/// Upstream `podToEndpoint`: `serving` is readiness, `ready` is readiness unless terminating
/// (always true when the Service publishes not-ready addresses).
pub fn endpoint(pod: &Pod, node: Option<&Node>, svc: &Service, family: IpFamily) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pods::is_terminating(pod);
    let ready = pods::publish_not_ready(svc) || (serving && !terminating);
    let zone = node.and_then(|n| n.metadata.labels.as_ref()).and_then(|l| l.get(ZONE_LABEL)).filter(|z| !z.is_empty());
    Endpoint {
        addresses: pods::pod_ips_of_family(pod, family),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
        zone: zone.cloned(),
        hostname: pods::hostname_for(pod, svc),
        ..Default::default()
    }
}

/// Upstream `getEndpointPorts`: each Service port the pod resolves, in the Service's order.
pub fn ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let svc_ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
    svc_ports
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = pods::find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(pods::port_protocol(sp).to_string()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// Upstream `setEndpointSliceLabels`: the Service's labels (minus the reserved ones), the
/// headless marker, the service name and managed-by. Also says whether the slice's own
/// non-reserved labels differ from the Service's (then the slice needs an update).
pub fn labels(current: Option<&BTreeMap<String, String>>, svc: &Service) -> (BTreeMap<String, String>, bool) {
    let reserved = |k: &String| k == SERVICE_NAME_LABEL || k == MANAGED_BY_LABEL || k == HEADLESS_LABEL;
    let strip = |m: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
        m.into_iter().flatten().filter(|(k, _)| !reserved(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let mut labels = strip(svc.metadata.labels.as_ref());
    let changed = strip(current) != labels;
    if !pods::is_service_ip_set(svc) {
        labels.insert(HEADLESS_LABEL.to_string(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.to_string(), svc.metadata.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY_LABEL.to_string(), CONTROLLER_NAME.to_string());
    (labels, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions() {
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {}})).expect("svc");
        let publish: Service =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"publishNotReadyAddresses": true}}))
                .expect("svc");
        let pod = |ready: bool, terminating: bool| -> Pod {
            let mut meta = json!({"name": "p", "namespace": "ns", "uid": "u"});
            if terminating {
                meta["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
            }
            serde_json::from_value(json!({"metadata": meta, "spec": {"nodeName": "n1", "containers": []},
                "status": {"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}))
            .expect("pod")
        };
        let cond = |p: &Pod, s: &Service| {
            let c = endpoint(p, None, s, IpFamily::V4).conditions.expect("conditions");
            (c.ready, c.serving, c.terminating)
        };
        let t = Some(true);
        let f = Some(false);
        assert_eq!(cond(&pod(true, false), &svc), (t, t, f));
        assert_eq!(cond(&pod(false, false), &svc), (f, f, f));
        assert_eq!(cond(&pod(true, true), &svc), (f, t, t));
        assert_eq!(cond(&pod(false, true), &publish), (t, f, t));
        let ep = endpoint(&pod(true, false), None, &svc, IpFamily::V4);
        assert_eq!(ep.addresses, ["10.0.0.1"]);
        assert_eq!(ep.node_name.as_deref(), Some("n1"));
    }

    #[test]
    fn slice_labels() {
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "web", "labels": {"app": "web",
            "kubernetes.io/service-name": "evil"}}, "spec": {"clusterIP": "None"}}))
        .expect("svc");
        let (labels, changed) = labels(None, &svc);
        assert!(changed);
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(labels.get(SERVICE_NAME_LABEL).map(String::as_str), Some("web"));
        assert_eq!(labels.get(MANAGED_BY_LABEL).map(String::as_str), Some(CONTROLLER_NAME));
        assert!(labels.contains_key(HEADLESS_LABEL));
        let (_, changed_again) = super::labels(Some(&labels), &svc);
        assert!(!changed_again);
    }
}
