//! The desired `subsets` of a Service's Endpoints (upstream `syncService` + `RepackSubsets`):
//! one address per eligible pod, ready ones in `addresses`, the rest in `notReadyAddresses`,
//! grouped so that addresses offering the same ports share a subset; sorted so equal
//! contents compare equal.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service};

use crate::service_endpoints as pods;

/// Most addresses one Endpoints object carries (upstream `maxCapacity`).
pub const MAX_ADDRESSES: usize = 1000;

/// Sort key of a port inside a subset.
type PortKey = (Option<String>, i32, Option<String>, Option<String>);
/// Identity of an address: IP and the pod's UID.
type AddrKey = (String, String);

fn port_key(p: &EndpointPort) -> PortKey {
    (p.name.clone(), p.port, p.protocol.clone(), p.app_protocol.clone())
}

/// The address a pod contributes: its IP of the Service's (first) family.
fn address(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let family = pods::service_families(svc).first().copied().unwrap_or(pods::IpFamily::V4);
    let ip = pods::pod_ips_of_family(pod, family).into_iter().next()?;
    Some(EndpointAddress {
        ip,
        hostname: pods::hostname_for(pod, svc),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

fn addr_key(a: &EndpointAddress) -> AddrKey {
    (a.ip.clone(), a.target_ref.as_ref().and_then(|r| r.uid.clone()).unwrap_or_default())
}

/// The subsets for `svc` given the pods its selector matches.
pub fn desired(svc: &Service, selected: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let publish_not_ready = pods::publish_not_ready(svc);
    let svc_ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    // Port (None: the no-ports sentinel of a headless Service) → address → (address, ready).
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddrKey, (EndpointAddress, bool)>> = BTreeMap::new();
    let mut ports: BTreeMap<PortKey, EndpointPort> = BTreeMap::new();
    for pod in selected {
        if !pods::should_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(addr) = address(svc, pod) else { continue };
        let ready = publish_not_ready || pods::is_ready(pod);
        if svc_ports.is_empty() {
            if pods::is_headless(svc) {
                by_port.entry(None).or_default().insert(addr_key(&addr), (addr, ready));
            }
            continue;
        }
        for sp in &svc_ports {
            let Some(number) = pods::find_port(pod, sp) else { continue };
            let ep = EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port: number,
                protocol: Some(pods::port_protocol(sp).to_string()),
                app_protocol: sp.app_protocol.clone(),
            };
            let key = port_key(&ep);
            ports.insert(key.clone(), ep);
            by_port.entry(Some(key)).or_default().insert(addr_key(&addr), (addr.clone(), ready));
        }
    }
    repack(by_port, &ports)
}

/// Groups ports whose address sets are identical into one subset.
fn repack(
    by_port: BTreeMap<Option<PortKey>, BTreeMap<AddrKey, (EndpointAddress, bool)>>,
    ports: &BTreeMap<PortKey, EndpointPort>,
) -> Vec<EndpointSubset> {
    type Group = (BTreeMap<AddrKey, (EndpointAddress, bool)>, Vec<EndpointPort>);
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Group> = BTreeMap::new();
    for (port, addrs) in by_port {
        let sig: Vec<(AddrKey, bool)> = addrs.iter().map(|(k, (_, ready))| (k.clone(), *ready)).collect();
        let group = groups.entry(sig).or_insert_with(|| (addrs, Vec::new()));
        if let Some(p) = port.and_then(|k| ports.get(&k)) {
            group.1.push(p.clone());
        }
    }
    groups
        .into_values()
        .map(|(addrs, ports)| {
            let (ready, not_ready): (Vec<_>, Vec<_>) = addrs.into_values().partition(|(_, r)| *r);
            let list = |v: Vec<(EndpointAddress, bool)>| {
                (!v.is_empty()).then(|| v.into_iter().map(|(a, _)| a).collect::<Vec<_>>())
            };
            EndpointSubset {
                addresses: list(ready),
                not_ready_addresses: list(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// Upstream `truncateEndpoints`: keeps at most [`MAX_ADDRESSES`], ready ones first, spread over
/// the subsets in proportion. Returns whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if ready + not_ready <= MAX_ADDRESSES {
        return false;
    }
    let truncate_ready = ready > MAX_ADDRESSES;
    let (max, total) = if truncate_ready { (MAX_ADDRESSES, ready) } else { (MAX_ADDRESSES - ready, not_ready) };
    let mut room = max;
    for s in subsets.iter_mut() {
        let field = if truncate_ready { &mut s.addresses } else { &mut s.not_ready_addresses };
        let n = count(field);
        let share = (n * max).div_ceil(total.max(1)).min(room);
        if let Some(v) = field.as_mut() {
            v.truncate(share);
        }
        room -= count(field);
        if truncate_ready {
            s.not_ready_addresses = None;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn svc(spec: Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": spec})).expect("svc")
    }

    fn pod(name: &str, ip: &str, ready: bool, ports: Value) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
                "status": {"phase": "Running", "podIP": ip,
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .expect("pod"),
        )
    }

    fn ips(v: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        v.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_share_a_subset() {
        let s = svc(
            json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}),
        );
        let pods = [
            pod("b", "10.0.0.2", true, json!([])),
            pod("a", "10.0.0.1", false, json!([])),
            pod("c", "10.0.0.3", true, json!([])),
        ];
        let got = desired(&s, &pods);
        assert_eq!(got.len(), 1);
        assert_eq!(ips(&got[0].addresses), ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(ips(&got[0].not_ready_addresses), ["10.0.0.1"]);
        let ports = got[0].ports.as_ref().expect("ports");
        assert_eq!((ports[0].port, ports[0].protocol.as_deref()), (8080, Some("TCP")));
        let addr = &got[0].addresses.as_ref().expect("addresses")[0];
        assert_eq!(addr.node_name.as_deref(), Some("n1"));
        let target = addr.target_ref.as_ref().expect("targetRef");
        assert_eq!(
            (target.kind.as_deref(), target.name.as_deref(), target.uid.as_deref()),
            (Some("Pod"), Some("b"), Some("uid-b"))
        );
    }

    #[test]
    fn publish_not_ready_makes_everything_ready() {
        let s = svc(json!({"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app": "web"},
            "ports": [{"port": 80}]}));
        let got = desired(&s, &[pod("a", "10.0.0.1", false, json!([]))]);
        assert_eq!(ips(&got[0].addresses), ["10.0.0.1"]);
        assert!(got[0].not_ready_addresses.is_none());
    }

    #[test]
    fn named_ports_split_subsets() {
        // Pod a names "http" 8080, pod b names it 9090, pod c lacks it: c has only the numeric port.
        let s = svc(json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "ports": [
            {"name": "web", "port": 80, "targetPort": "http"},
            {"name": "admin", "port": 81, "targetPort": 7000}
        ]}));
        let pods = [
            pod("a", "10.0.0.1", true, json!([{"name": "http", "containerPort": 8080}])),
            pod("b", "10.0.0.2", true, json!([{"name": "http", "containerPort": 9090}])),
            pod("c", "10.0.0.3", true, json!([])),
        ];
        let got = desired(&s, &pods);
        type Shape<'a> = (Vec<&'a str>, Vec<(Option<&'a str>, i32)>);
        let shape: Vec<Shape> = got
            .iter()
            .map(|sub| {
                let ports = sub.ports.iter().flatten().map(|p| (p.name.as_deref(), p.port)).collect();
                (ips(&sub.addresses), ports)
            })
            .collect();
        assert_eq!(shape.len(), 3);
        assert!(shape.contains(&(vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"], vec![(Some("admin"), 7000)])));
        assert!(shape.contains(&(vec!["10.0.0.1"], vec![(Some("web"), 8080)])));
        assert!(shape.contains(&(vec!["10.0.0.2"], vec![(Some("web"), 9090)])));
    }

    #[test]
    fn skipped_pods() {
        let s = svc(json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let mut no_ip = (*pod("a", "", true, json!([]))).clone();
        no_ip.status.as_mut().expect("status").pod_ip = None;
        let mut terminating = (*pod("b", "10.0.0.2", true, json!([]))).clone();
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2024-01-01T00:00:00Z".parse().expect("time")));
        let mut finished = (*pod("c", "10.0.0.3", false, json!([]))).clone();
        finished.status.as_mut().expect("status").phase = Some("Succeeded".into());
        let got = desired(&s, &[Arc::new(no_ip), Arc::new(terminating), Arc::new(finished)]);
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn headless_without_ports_keeps_addresses() {
        let headless = svc(json!({"clusterIP": "None", "selector": {"app": "web"}}));
        let got = desired(&headless, &[pod("a", "10.0.0.1", true, json!([]))]);
        assert_eq!(got.len(), 1);
        assert!(got[0].ports.is_none());
        let not_headless = svc(json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}}));
        assert!(desired(&not_headless, &[pod("a", "10.0.0.1", true, json!([]))]).is_empty());
    }

    #[test]
    fn truncation_prefers_ready() {
        let addrs = |n: usize, base: u32| {
            Some(
                (0..n)
                    .map(|i| EndpointAddress { ip: format!("10.{base}.{}.{}", i / 256, i % 256), ..Default::default() })
                    .collect(),
            )
        };
        let mut subsets = vec![
            EndpointSubset { addresses: addrs(600, 1), not_ready_addresses: addrs(300, 2), ports: None },
            EndpointSubset { addresses: addrs(300, 3), not_ready_addresses: addrs(300, 4), ports: None },
        ];
        assert!(truncate(&mut subsets));
        let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
        assert_eq!(count(&subsets[0].addresses) + count(&subsets[1].addresses), 900);
        assert_eq!(count(&subsets[0].not_ready_addresses) + count(&subsets[1].not_ready_addresses), 100);
        let mut small = vec![EndpointSubset { addresses: addrs(3, 1), ..Default::default() }];
        assert!(!truncate(&mut small));
    }
}
