//! Endpoints, EndpointSlice, Event and Lease.

use super::container::protocol;
use super::net;
use crate::admission::errs::{self, child, index};
use crate::admission::json;
use crate::admission::labels::qualified_name;
use crate::admission::names::{dns1123_label, dns1123_subdomain, port_num};
use api::Cause;
use serde_json::Value;
use std::collections::HashSet;

fn endpoint_ip(out: &mut Vec<Cause>, s: &str, p: &str) {
    match net::ip(s) {
        None => out.push(errs::invalid_str(p, s, net::IP_MSG)),
        Some(a) => {
            if let Some(msg) = net::special_ip_msg(a) {
                out.push(errs::invalid_str(p, s, msg));
            }
        }
    }
}

pub fn endpoints(out: &mut Vec<Cause>, obj: &Value) {
    for (i, subset) in json::arr(obj, "subsets").iter().enumerate() {
        let sp = index("subsets", i);
        let addrs = json::arr(subset, "addresses");
        let not_ready = json::arr(subset, "notReadyAddresses");
        let ports = json::arr(subset, "ports");
        if addrs.is_empty() && not_ready.is_empty() {
            out.push(errs::required(&sp, "must specify `addresses` or `notReadyAddresses`"));
        }
        for field in ["addresses", "notReadyAddresses"] {
            for (j, a) in json::arr(subset, field).iter().enumerate() {
                let ap = index(&child(&sp, field), j);
                endpoint_ip(out, json::s(a, "ip"), &child(&ap, "ip"));
                let host = json::s(a, "hostname");
                if !host.is_empty() {
                    for msg in dns1123_label(host) {
                        out.push(errs::invalid_str(&child(&ap, "hostname"), host, &msg));
                    }
                }
            }
        }
        let require_name = ports.len() > 1;
        for (j, p) in ports.iter().enumerate() {
            let pp = index(&child(&sp, "ports"), j);
            port_common(out, p, &pp, require_name);
            let port = json::int(p, "port").unwrap_or(0);
            for msg in port_num(port) {
                out.push(errs::invalid_int(&child(&pp, "port"), port, &msg));
            }
        }
    }
}

fn port_common(out: &mut Vec<Cause>, p: &Value, pp: &str, require_name: bool) {
    let name = json::s(p, "name");
    if name.is_empty() {
        if require_name {
            out.push(errs::required(&child(pp, "name"), ""));
        }
    } else {
        for msg in dns1123_label(name) {
            out.push(errs::invalid_str(&child(pp, "name"), name, &msg));
        }
    }
    protocol(out, p, pp);
    if let Some(ap) = json::opt_s(p, "appProtocol") {
        for msg in qualified_name(ap) {
            out.push(errs::invalid_str(&child(pp, "appProtocol"), ap, &msg));
        }
    }
}

const ADDRESS_TYPES: &[&str] = &["IPv4", "IPv6", "FQDN"];

pub fn endpoint_slice(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let at = json::s(obj, "addressType");
    if at.is_empty() {
        out.push(errs::required("addressType", ""));
    } else if !ADDRESS_TYPES.contains(&at) {
        out.push(errs::not_supported("addressType", at, ADDRESS_TYPES));
    }
    let endpoints = json::arr(obj, "endpoints");
    if endpoints.len() > 1000 {
        out.push(errs::too_many("endpoints", endpoints.len(), 1000));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let ep = index("endpoints", i);
        let addrs = json::arr(e, "addresses");
        if addrs.is_empty() {
            out.push(errs::required(&child(&ep, "addresses"), "must contain at least 1 address"));
        } else if addrs.len() > 100 {
            out.push(errs::too_many(&child(&ep, "addresses"), addrs.len(), 100));
        }
        for (j, a) in addrs.iter().enumerate() {
            let s = a.as_str().unwrap_or("");
            let ap = index(&child(&ep, "addresses"), j);
            match at {
                "IPv4" | "IPv6" => match net::ip(s) {
                    Some(ip) if ip.is_ipv4() == (at == "IPv4") => {
                        if let Some(msg) = net::special_ip_msg(ip) {
                            out.push(errs::invalid_str(&ap, s, msg));
                        }
                    }
                    Some(_) => out.push(errs::invalid_str(&ap, s, &format!("must be an {at} address"))),
                    None => out.push(errs::invalid_str(&ap, s, net::IP_MSG)),
                },
                "FQDN" => {
                    for msg in dns1123_subdomain(s) {
                        out.push(errs::invalid_str(&ap, s, &msg));
                    }
                }
                _ => {}
            }
        }
        for (field, label) in [("hostname", true), ("nodeName", false)] {
            if let Some(v) = json::opt_s(e, field) {
                let msgs = if label { dns1123_label(v) } else { dns1123_subdomain(v) };
                for msg in msgs {
                    out.push(errs::invalid_str(&child(&ep, field), v, &msg));
                }
            }
        }
    }
    let ports = json::arr(obj, "ports");
    if ports.len() > 100 {
        out.push(errs::too_many("ports", ports.len(), 100));
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("ports", i);
        port_common(out, p, &pp, false);
        let name = json::s(p, "name");
        if !names.insert(name) {
            out.push(errs::duplicate(&child(&pp, "name"), &Value::String(name.into())));
        }
        if let Some(port) = json::int(p, "port") {
            if !(0..=65535).contains(&port) {
                out.push(errs::invalid_int(&child(&pp, "port"), port, "must be between 0 and 65535, inclusive"));
            }
        }
    }
    if let Some(old) = old {
        errs::immutable(out, "addressType", obj.get("addressType"), old.get("addressType"));
    }
}

/// Legacy (core/v1) event validation: upstream checks nothing more for this group, on create or update.
pub fn event(out: &mut Vec<Cause>, obj: &Value) {
    let ns = json::at(obj, &["metadata", "namespace"]).and_then(Value::as_str).unwrap_or("");
    let involved = obj.get("involvedObject").unwrap_or(&Value::Null);
    let ins = json::s(involved, "namespace");
    let new_style = json::present(obj, "eventTime").is_some();
    let mismatch = if ins.is_empty() {
        if new_style {
            ns != "default" && ns != "kube-system"
        } else {
            !ns.is_empty() && ns != "default"
        }
    } else {
        ns != ins
    };
    if mismatch {
        out.push(errs::invalid_str("involvedObject.namespace", ins, "does not match event.namespace"));
    }
    if new_style {
        let rc = json::s(obj, "reportingComponent");
        if rc.is_empty() {
            out.push(errs::required("source", ""));
        } else {
            for msg in qualified_name(rc) {
                out.push(errs::invalid_str("source", rc, &msg));
            }
        }
        for (f, max, required) in
            [("reportingInstance", 128, true), ("action", 128, true), ("reason", 128, true), ("message", 1024, false)]
        {
            let v = json::s(obj, f);
            if required && v.is_empty() {
                out.push(errs::required(f, ""));
            }
            if v.len() > max {
                out.push(errs::invalid_str(f, "", &format!("can have at most {max} characters")));
            }
        }
    }
}

pub fn lease(out: &mut Vec<Cause>, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    errs::positive(out, "spec.leaseDurationSeconds", json::int(spec, "leaseDurationSeconds"));
    errs::nonnegative(out, "spec.leaseTransitions", json::int(spec, "leaseTransitions"));
    let strategy = json::s(spec, "strategy");
    if !strategy.is_empty() && strategy != "OldestEmulationVersion" {
        out.push(errs::not_supported("spec.strategy", strategy, &["OldestEmulationVersion"]));
    }
    if !json::s(spec, "preferredHolder").is_empty() && strategy.is_empty() {
        out.push(errs::forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"));
    }
}
