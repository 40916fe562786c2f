//! Namespace and Node.

use super::net;
use super::pod::taint_effect;
use super::resources::plain_list;
use crate::admission::errs::{self, child, index};
use crate::admission::json;
use crate::admission::labels::{label_value, qualified_name, validate_finalizers};
use api::Cause;
use serde_json::Value;
use std::collections::HashSet;

pub fn namespace(out: &mut Vec<Cause>, obj: &Value) {
    validate_finalizers(out, json::at(obj, &["spec", "finalizers"]), "spec.finalizers");
    let phase = json::at(obj, &["status", "phase"]).and_then(Value::as_str).unwrap_or("");
    if !phase.is_empty() && phase != "Active" && phase != "Terminating" {
        out.push(errs::not_supported("status.phase", phase, &["Active", "Terminating"]));
    }
}

pub fn node(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let cidr = json::s(spec, "podCIDR");
    if !cidr.is_empty() && !net::is_cidr(cidr) {
        out.push(errs::invalid_str("spec.podCIDR", cidr, net::CIDR_MSG));
    }
    for (i, c) in json::arr(spec, "podCIDRs").iter().enumerate() {
        let s = c.as_str().unwrap_or("");
        if !net::is_cidr(s) {
            out.push(errs::invalid_str(&index("spec.podCIDRs", i), s, net::CIDR_MSG));
        }
    }
    let mut seen = HashSet::new();
    for (i, t) in json::arr(spec, "taints").iter().enumerate() {
        let p = index("spec.taints", i);
        let key = json::s(t, "key");
        for msg in qualified_name(key) {
            out.push(errs::invalid_str(&child(&p, "key"), key, &msg));
        }
        let value = json::s(t, "value");
        for msg in label_value(value) {
            out.push(errs::invalid_str(&child(&p, "value"), value, &msg));
        }
        let effect = json::s(t, "effect");
        if effect.is_empty() {
            out.push(errs::required(&child(&p, "effect"), ""));
        } else {
            taint_effect(out, effect, &child(&p, "effect"));
        }
        if !seen.insert((key, effect)) {
            out.push(errs::duplicate(&p, t));
            out.push(errs::invalid_str(&p, "", "taints must be unique by key and effect pair"));
        }
    }
    let status = obj.get("status").unwrap_or(&Value::Null);
    plain_list(out, status.get("capacity"), "status.capacity");
    plain_list(out, status.get("allocatable"), "status.allocatable");
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&Value::Null);
        let old_cidr = json::s(old_spec, "podCIDR");
        if !old_cidr.is_empty() && old_cidr != cidr {
            out.push(errs::forbidden("spec.podCIDR", "node updates may not change podCIDR except from \"\" to valid"));
        }
        let old_pid = json::s(old_spec, "providerID");
        if !old_pid.is_empty() && old_pid != json::s(spec, "providerID") {
            out.push(errs::forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
    }
}
