//! Service, Endpoints and EndpointSlice defaults. Cluster IP allocation is the caller's job; the IP
//! family fields are derived from any cluster IPs already present, else IPv4 single-stack.

use crate::admission::json::{self, default, default_str, each_mut};
use serde_json::{json, Value};

pub fn service(obj: &mut Value) {
    let Some(spec) = json::ensure_obj(obj, "spec") else { return };
    default_str(spec, "type", "ClusterIP");
    default_str(spec, "sessionAffinity", "None");
    let ty = json::s(spec, "type").to_string();
    for p in each_mut(spec, "ports") {
        default_str(p, "protocol", "TCP");
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(v) => v.as_i64() == Some(0),
        };
        if unset {
            if let Some(port) = p.get("port").cloned() {
                if let Some(m) = p.as_object_mut() {
                    m.insert("targetPort".into(), port);
                }
            }
        }
    }
    if json::s(spec, "sessionAffinity") == "ClientIP" {
        if let Some(cfg) = json::ensure_obj(spec, "sessionAffinityConfig") {
            if let Some(ip) = json::ensure_obj(cfg, "clientIP") {
                default(ip, "timeoutSeconds", json!(10800));
            }
        }
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        default_str(spec, "internalTrafficPolicy", "Cluster");
        default_str(spec, "ipFamilyPolicy", "SingleStack");
        let mut ips: Vec<String> =
            json::arr(spec, "clusterIPs").iter().filter_map(Value::as_str).map(str::to_string).collect();
        if ips.is_empty() {
            ips.extend(json::opt_s(spec, "clusterIP").map(str::to_string));
        }
        let families: Vec<Value> = ips
            .iter()
            .filter(|ip| ip.as_str() != "None" && !ip.is_empty())
            .map(|ip| json!(if ip.contains(':') { "IPv6" } else { "IPv4" }))
            .collect();
        let families = if families.is_empty() { vec![json!("IPv4")] } else { families };
        if json::arr(spec, "ipFamilies").is_empty() {
            if let Some(m) = spec.as_object_mut() {
                m.insert("ipFamilies".into(), Value::Array(families));
            }
        }
    }
}

pub fn endpoints(obj: &mut Value) {
    for subset in each_mut(obj, "subsets") {
        for p in each_mut(subset, "ports") {
            default_str(p, "protocol", "TCP");
        }
    }
}

pub fn endpoint_slice(obj: &mut Value) {
    for p in each_mut(obj, "ports") {
        default_str(p, "protocol", "TCP");
        default(p, "name", json!(""));
    }
}
