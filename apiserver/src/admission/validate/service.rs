//! Service (`ValidateService`, `ValidateServiceUpdate`). NodePort ranges and cluster IP allocation
//! belong to the allocator, not here.

use super::container::{enum_field, port_num_or_name, protocol};
use super::net;
use crate::admission::defaults::service::{family_of, headless_selectorless, requested_ips, CLUSTER_IP_FAMILIES};
use crate::admission::errs::{self, child, index};
use crate::admission::json;
use crate::admission::labels::validate_labels;
use crate::admission::names::{dns1123_label, dns1123_subdomain, port_num};
use api::Cause;
use serde_json::{json, Value};
use std::collections::HashSet;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

pub fn service(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let ty = json::s(spec, "type");
    if ty.is_empty() {
        out.push(errs::required("spec.type", ""));
    } else if !TYPES.contains(&ty) {
        out.push(errs::not_supported("spec.type", ty, TYPES));
    }
    let cluster_ip = json::s(spec, "clusterIP");
    let headless = cluster_ip == "None";
    let ports = json::arr(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        out.push(errs::required("spec.ports", ""));
    }
    service_ports(out, ports, ty);
    if ty == "ExternalName" {
        if !cluster_ip.is_empty() {
            out.push(errs::forbidden("spec.clusterIP", "may not be set for ExternalName services"));
        }
        let name = json::s(spec, "externalName");
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            out.push(errs::required("spec.externalName", ""));
        } else {
            for msg in dns1123_subdomain(trimmed) {
                out.push(errs::invalid_str("spec.externalName", name, &msg));
            }
        }
    } else if !cluster_ip.is_empty() && !headless && net::ip(cluster_ip).is_none() {
        out.push(errs::invalid_str("spec.clusterIP", cluster_ip, "must be empty, 'None', or a valid IP address"));
    }
    if headless && (ty == "NodePort" || ty == "LoadBalancer") {
        out.push(errs::invalid_str(
            "spec.clusterIP",
            cluster_ip,
            &format!("may not be set to 'None' for {ty} services"),
        ));
    }
    for (i, ip) in json::arr(spec, "externalIPs").iter().enumerate() {
        let s = ip.as_str().unwrap_or("");
        if net::ip(s).is_none() {
            out.push(errs::invalid_str(&index("spec.externalIPs", i), s, net::IP_MSG));
        }
    }
    validate_labels(out, spec.get("selector"), "spec.selector");
    session_affinity(out, spec);
    traffic_policies(out, spec, ty);
    ip_families(out, spec, ty);
    if let Some(old) = old {
        update(out, spec, old.get("spec").unwrap_or(&Value::Null));
    }
}

fn service_ports(out: &mut Vec<Cause>, ports: &[Value], ty: &str) {
    let require_name = ports.len() > 1;
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let name = json::s(p, "name");
        if name.is_empty() {
            if require_name {
                out.push(errs::required(&child(&pp, "name"), ""));
            }
        } else {
            let msgs = dns1123_label(name);
            for msg in &msgs {
                out.push(errs::invalid_str(&child(&pp, "name"), name, msg));
            }
            if msgs.is_empty() && !names.insert(name) {
                out.push(errs::duplicate(&child(&pp, "name"), &Value::String(name.into())));
            }
        }
        let port = json::int(p, "port").unwrap_or(0);
        for msg in port_num(port) {
            out.push(errs::invalid_int(&child(&pp, "port"), port, &msg));
        }
        protocol(out, p, &pp);
        if let Some(tp) = json::present(p, "targetPort") {
            port_num_or_name(out, Some(tp), &child(&pp, "targetPort"));
        }
        if json::int(p, "nodePort").is_some_and(|n| n != 0) && (ty == "ClusterIP" || ty == "ExternalName") {
            out.push(errs::forbidden(&child(&pp, "nodePort"), &format!("may not be used when `type` is '{ty}'")));
        }
        let proto = json::s(p, "protocol");
        if !keys.insert((port, proto.to_string())) {
            out.push(errs::duplicate(&pp, &json!({"port": port, "protocol": proto})));
        }
    }
}

fn session_affinity(out: &mut Vec<Cause>, spec: &Value) {
    enum_field(out, spec, "spec", "sessionAffinity", &["ClientIP", "None"]);
    let cfg = json::present(spec, "sessionAffinityConfig");
    if json::s(spec, "sessionAffinity") == "ClientIP" {
        let p = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
        match cfg.and_then(|c| json::at(c, &["clientIP", "timeoutSeconds"])).and_then(Value::as_i64) {
            None => out.push(errs::required(p, "")),
            Some(t) if !(1..=86400).contains(&t) => {
                out.push(errs::invalid_int(p, t, "must be greater than 0 and less than 86400"))
            }
            _ => {}
        }
    } else if cfg.is_some() {
        out.push(errs::invalid(
            "spec.sessionAffinityConfig",
            cfg.unwrap_or(&Value::Null),
            "must not be set when session affinity is None",
        ));
    }
}

fn traffic_policies(out: &mut Vec<Cause>, spec: &Value, ty: &str) {
    let etp = json::s(spec, "externalTrafficPolicy");
    if !etp.is_empty() {
        if ty != "NodePort" && ty != "LoadBalancer" {
            out.push(errs::invalid_str(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ));
        } else if etp != "Cluster" && etp != "Local" {
            out.push(errs::not_supported("spec.externalTrafficPolicy", etp, &["Cluster", "Local"]));
        }
    }
    if let Some(itp) = json::opt_s(spec, "internalTrafficPolicy") {
        if itp != "Cluster" && itp != "Local" {
            out.push(errs::not_supported("spec.internalTrafficPolicy", itp, &["Cluster", "Local"]));
        }
    }
}

fn ip_families(out: &mut Vec<Cause>, spec: &Value, ty: &str) {
    let policy = json::s(spec, "ipFamilyPolicy");
    let policies = ["SingleStack", "PreferDualStack", "RequireDualStack"];
    if !policy.is_empty() && !policies.contains(&policy) {
        out.push(errs::not_supported("spec.ipFamilyPolicy", policy, &policies));
    }
    let families = json::arr(spec, "ipFamilies");
    if ty == "ExternalName" {
        if !families.is_empty() {
            out.push(errs::forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
        }
        return;
    }
    let mut seen = HashSet::new();
    for (i, f) in families.iter().enumerate() {
        let s = f.as_str().unwrap_or("");
        let p = index("spec.ipFamilies", i);
        if s != "IPv4" && s != "IPv6" {
            out.push(errs::not_supported(&p, s, &["IPv4", "IPv6"]));
        } else if !seen.insert(s) {
            out.push(errs::duplicate(&p, f));
        }
    }
    if families.len() > 2 {
        out.push(errs::invalid(
            "spec.ipFamilies",
            &Value::Array(families.to_vec()),
            "may not have more than 2 entries",
        ));
    }
}

/// Go's `%#v` of a `[]string` (how upstream shows `clusterIPs` in a cause).
fn go_strings(v: &[&str]) -> String {
    let items: Vec<String> = v.iter().map(|s| errs::quote(s)).collect();
    format!("[]string{{{}}}", items.join(", "))
}

fn configured(family: &str) -> bool {
    CLUSTER_IP_FAMILIES.contains(&family)
}

/// What upstream's Service allocator rejects before validation runs (`initIPFamilyFields` with
/// `ValidateServiceClusterIPsRelatedFields`), on this cluster, which serves IPv4 only. Upstream
/// answers with these causes alone. Malformed families, policies or addresses are left to
/// [`service`], which reports them.
pub fn allocation(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if json::s(spec, "type") == "ExternalName" {
        return out;
    }
    let families: Vec<&str> = json::arr(spec, "ipFamilies").iter().map(|f| f.as_str().unwrap_or("")).collect();
    let distinct: HashSet<&str> = families.iter().copied().collect();
    if families.iter().any(|f| *f != "IPv4" && *f != "IPv6") || distinct.len() != families.len() {
        return out;
    }
    let policy = json::s(spec, "ipFamilyPolicy");
    if !["", "SingleStack", "PreferDualStack", "RequireDualStack"].contains(&policy) {
        return out;
    }
    let ips = requested_ips(spec);
    let headless = ips.len() == 1 && ips[0] == "None";
    let ip_families: Vec<Option<&str>> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| if i == 0 && *ip == "None" { Some("None") } else { family_of(ip) })
        .collect();
    if ip_families.iter().any(Option::is_none) || ips.len() > 2 || (ips.len() > 1 && ips[0] == "None") {
        return out;
    }
    if ips.len() == 2 && ip_families[0] == ip_families[1] {
        out.push(errs::invalid_raw(
            "spec.clusterIPs",
            &go_strings(&ips),
            "may specify no more than one IP for each IP family",
        ));
    }
    if !headless {
        for (i, (ip, fam)) in ips.iter().zip(&ip_families).enumerate() {
            match families.get(i) {
                Some(want) if Some(*want) != *fam => out.push(errs::invalid_str(
                    &index("spec.clusterIPs", i),
                    ip,
                    &format!("expected an {want} value as indicated by `ipFamilies[{i}]`"),
                )),
                _ => {}
            }
        }
    }
    if !out.is_empty() {
        return out;
    }
    if policy == "SingleStack" {
        if ips.len() == 2 {
            out.push(errs::invalid_str(
                "spec.ipFamilyPolicy",
                policy,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families.len() == 2 {
            out.push(errs::invalid_str(
                "spec.ipFamilyPolicy",
                policy,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    for (i, fam) in ip_families.iter().enumerate() {
        let Some(fam) = fam.filter(|f| *f != "None") else { break };
        if i >= families.len() && !configured(fam) {
            out.push(errs::invalid_raw(
                &index("spec.clusterIPs", i),
                &go_strings(&ips),
                &format!("{fam} is not configured on this cluster"),
            ));
        }
    }
    if !out.is_empty() || headless_selectorless(spec) {
        return out;
    }
    if policy == "RequireDualStack" && CLUSTER_IP_FAMILIES.len() < 2 {
        out.push(errs::invalid_str(
            "spec.ipFamilyPolicy",
            policy,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, fam) in families.iter().enumerate() {
        if !configured(fam) {
            out.push(errs::invalid_str(&index("spec.ipFamilies", i), fam, "not configured on this cluster"));
        }
    }
    out
}

/// `clusterIP` cannot change while neither side is ExternalName (an empty new value means "keep").
fn update(out: &mut Vec<Cause>, new: &Value, old: &Value) {
    let needs_ip = |s: &Value| json::s(s, "type") != "ExternalName";
    let (n, o) = (json::s(new, "clusterIP"), json::s(old, "clusterIP"));
    if needs_ip(new) && needs_ip(old) && !n.is_empty() && !o.is_empty() && n != o {
        out.push(errs::invalid_str("spec.clusterIP", n, "field is immutable"));
    }
    // Headless Services may change families (upstream's validateUpgradeDowngradeIPFamilies).
    let headless = |s: &Value| requested_ips(s) == ["None"];
    let (nf, of) = (json::arr(new, "ipFamilies"), json::arr(old, "ipFamilies"));
    if needs_ip(new)
        && needs_ip(old)
        && !headless(new)
        && !headless(old)
        && !nf.is_empty()
        && !of.is_empty()
        && nf.first() != of.first()
    {
        out.push(errs::invalid(
            &index("spec.ipFamilies", 0),
            nf.first().unwrap_or(&Value::Null),
            "may not change once set",
        ));
    }
}
