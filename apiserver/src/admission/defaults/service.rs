//! Service, Endpoints and EndpointSlice defaults. Cluster IP allocation is the caller's job; the IP
//! family fields are defaulted as upstream's allocator (`initIPFamilyFields`) does on this cluster,
//! which is single-stack IPv4: `ipFamilyPolicy` SingleStack (RequireDualStack for a headless Service
//! without selector), `ipFamilies` inferred from configured-family cluster IPs, else `[IPv4]` (plus
//! the other family for a headless, selectorless, non-SingleStack Service).

use crate::admission::json::{self, default, default_str, each_mut};
use serde_json::{json, Value};

/// The IP families this cluster's Service CIDR serves (`--service-cidr` is IPv4 only); the first
/// is the default family. Validation rejects any other family, as upstream's
/// "not configured on this cluster".
pub const CLUSTER_IP_FAMILIES: &[&str] = &["IPv4"];

/// `IPv4` or `IPv6` for a literal IP address.
pub fn family_of(ip: &str) -> Option<&'static str> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(_) => Some("IPv4"),
        std::net::IpAddr::V6(_) => Some("IPv6"),
    }
}

/// The cluster IPs a spec asks for: `clusterIPs`, else `clusterIP` (what upstream's
/// `normalizeClusterIPs` makes of them).
pub fn requested_ips(spec: &Value) -> Vec<&str> {
    let ips: Vec<&str> = json::arr(spec, "clusterIPs").iter().filter_map(Value::as_str).collect();
    if !ips.is_empty() {
        return ips;
    }
    json::opt_s(spec, "clusterIP").filter(|s| !s.is_empty()).into_iter().collect()
}

/// Headless (`clusterIP: None`) and without a selector: upstream lets such a Service keep both
/// families even on a single-stack cluster.
pub fn headless_selectorless(spec: &Value) -> bool {
    let headless = requested_ips(spec).first() == Some(&"None");
    headless && json::obj(spec, "selector").is_none_or(|m| m.is_empty())
}

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
    match json::s(spec, "sessionAffinity") {
        "None" => {
            if let Some(m) = spec.as_object_mut() {
                m.shift_remove("sessionAffinityConfig");
            }
        }
        "ClientIP" => {
            if let Some(cfg) = json::ensure_obj(spec, "sessionAffinityConfig") {
                if let Some(ip) = json::ensure_obj(cfg, "clientIP") {
                    default(ip, "timeoutSeconds", json!(10800));
                }
            }
        }
        _ => {}
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default_str(spec, "internalTrafficPolicy", "Cluster");
    }
    if ty != "ExternalName" {
        ip_families(spec);
    }
}

/// `ipFamilyPolicy` and `ipFamilies` as upstream's `initIPFamilyFields` fills them in.
fn ip_families(spec: &mut Value) {
    let special = headless_selectorless(spec);
    default_str(spec, "ipFamilyPolicy", if special { "RequireDualStack" } else { "SingleStack" });
    let Some(mut families) = (match spec.get("ipFamilies") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => None,
    }) else {
        return;
    };
    let before = families.len();
    let ips: Vec<String> = requested_ips(spec).into_iter().map(str::to_string).collect();
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i < families.len() {
            continue;
        }
        // A family this cluster does not serve is not inferred: validation reports the address.
        match family_of(ip) {
            Some(f) if CLUSTER_IP_FAMILIES.contains(&f) => families.push(json!(f)),
            _ => break,
        }
    }
    let real_ips = ips.iter().any(|ip| ip != "None");
    if families.is_empty() && !real_ips {
        families.push(json!(CLUSTER_IP_FAMILIES[0]));
    }
    if special && families.len() == 1 && json::s(spec, "ipFamilyPolicy") != "SingleStack" {
        let alt = if families[0] == "IPv4" { "IPv6" } else { "IPv4" };
        if families[0] == "IPv4" || families[0] == "IPv6" {
            families.push(json!(alt));
        }
    }
    if families.len() != before {
        if let Some(m) = spec.as_object_mut() {
            m.insert("ipFamilies".into(), Value::Array(families));
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
