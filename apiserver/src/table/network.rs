//! Rows of Service, Endpoints and EndpointSlice (upstream `printService`, `printEndpoints`,
//! `printEndpointSlice`).

use super::age::{since, time_of, Instant};
use super::json::{at, format_labels, int_at, list_at, map_at, opt_int_at, s, str_at};
use serde_json::Value;
use std::collections::BTreeSet;

fn name(obj: &Value) -> Value {
    s(str_at(obj, &["metadata", "name"]))
}

fn age(obj: &Value, now: Instant) -> Value {
    s(since(time_of(at(obj, &["metadata", "creationTimestamp"])), now))
}

fn strings(list: &[Value]) -> Vec<&str> {
    list.iter().filter_map(Value::as_str).collect()
}

/// Upstream `loadBalancerStatusStringer` (wide: never clipped): sorted unique IPs or hostnames.
fn load_balancer_addresses(svc: &Value) -> Vec<&str> {
    let set: BTreeSet<&str> = list_at(svc, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|ing| {
            let ip = str_at(ing, &["ip"]);
            let host = str_at(ing, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect()
}

fn external_ip(svc: &Value, svc_type: &str) -> String {
    let external = strings(list_at(svc, &["spec", "externalIPs"]));
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let mut all = load_balancer_addresses(svc);
            if all.is_empty() && external.is_empty() {
                return "<pending>".to_string();
            }
            all.extend(external);
            all.join(",")
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn port_string(svc: &Value) -> String {
    let pieces: Vec<String> = list_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let protocol = match str_at(p, &["protocol"]) {
                "" => "TCP",
                other => other,
            };
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".to_string()
    } else {
        pieces.join(",")
    }
}

pub fn service(svc: &Value, now: Instant) -> Vec<Value> {
    // v1 defaulting: type ClusterIP, clusterIPs from clusterIP.
    let svc_type = match str_at(svc, &["spec", "type"]) {
        "" => "ClusterIP",
        other => other,
    };
    let cluster_ips = strings(list_at(svc, &["spec", "clusterIPs"]));
    let cluster_ip = match cluster_ips.first() {
        Some(ip) => ip.to_string(),
        None => match str_at(svc, &["spec", "clusterIP"]) {
            "" => "<none>".to_string(),
            ip => ip.to_string(),
        },
    };
    vec![
        name(svc),
        s(svc_type),
        s(cluster_ip),
        s(external_ip(svc, svc_type)),
        s(port_string(svc)),
        age(svc, now),
        s(format_labels(map_at(svc, &["spec", "selector"]))),
    ]
}

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Upstream `formatEndpoints` with all ports: at most 3 addresses, then "+ N more...".
fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list_at(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = list_at(ss, &["addresses"]);
        let ports = list_at(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(addr, &["ip"]), int_at(port, &["port"])));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

pub fn endpoints(ep: &Value, now: Instant) -> Vec<Value> {
    vec![name(ep), s(format_endpoints(ep)), age(ep, now)]
}

/// Upstream `listWithMoreString`.
fn list_with_more(items: Vec<String>, count: usize) -> String {
    const MAX: usize = 3;
    let more = count > MAX;
    let shown: Vec<String> = items.into_iter().take(MAX).collect();
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

pub fn endpoint_slice(eps: &Value, now: Instant) -> Vec<Value> {
    let ports: Vec<String> = list_at(eps, &["ports"])
        .iter()
        .map(|p| match (opt_int_at(p, &["port"]), p.get("name").and_then(Value::as_str)) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let port_count = ports.len();
    let addresses: Vec<String> = list_at(eps, &["endpoints"])
        .iter()
        .flat_map(|e| strings(list_at(e, &["addresses"])))
        .map(str::to_string)
        .collect();
    let address_count = addresses.len();
    vec![
        name(eps),
        s(str_at(eps, &["addressType"])),
        s(list_with_more(ports, port_count)),
        s(list_with_more(addresses, address_count)),
        age(eps, now),
    ]
}
