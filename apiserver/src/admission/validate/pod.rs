//! Pod and pod-template validation (`ValidatePodCreate`, `ValidatePodSpec`, `ValidatePodTemplateSpec`).

use super::container::{containers, enum_field, security_context, Ctx};
use super::meta::template_meta;
use super::net;
use super::pod_update;
use super::resources;
use super::volumes::volumes;
use crate::admission::errs::{self, child, index};
use crate::admission::json;
use crate::admission::labels::{label_value, qualified_name, validate_labels, validate_selector};
use crate::admission::names::{dns1123_label, dns1123_subdomain};
use api::Cause;
use serde_json::Value;
use std::collections::HashSet;

pub fn pod(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    pod_spec(out, spec, "spec");
    match old {
        None => {
            if !json::arr(spec, "ephemeralContainers").is_empty() {
                out.push(errs::forbidden("spec.ephemeralContainers", "cannot be set on create"));
            }
        }
        Some(old) => pod_update::pod_update(out, obj, old),
    }
}

/// A `PodTemplateSpec` at `path` (e.g. `spec.template`).
pub fn template(out: &mut Vec<Cause>, t: Option<&Value>, path: &str) {
    let t = t.unwrap_or(&Value::Null);
    template_meta(out, t.get("metadata"), &child(path, "metadata"));
    let spec = t.get("spec").unwrap_or(&Value::Null);
    let sp = child(path, "spec");
    pod_spec(out, spec, &sp);
    if !json::arr(spec, "ephemeralContainers").is_empty() {
        out.push(errs::forbidden(
            &child(&sp, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

fn dns_names(out: &mut Vec<Cause>, spec: &Value, p: &str) {
    for (field, label) in [("hostname", true), ("subdomain", true), ("nodeName", false), ("schedulerName", false)] {
        let v = json::s(spec, field);
        if v.is_empty() {
            continue;
        }
        let msgs = if label { dns1123_label(v) } else { dns1123_subdomain(v) };
        for msg in msgs {
            out.push(errs::invalid_str(&child(p, field), v, &msg));
        }
    }
    let sa = json::s(spec, "serviceAccountName");
    if !sa.is_empty() {
        for msg in dns1123_subdomain(sa) {
            out.push(errs::invalid_str(&child(p, "serviceAccountName"), sa, &msg));
        }
    }
}

pub fn pod_spec(out: &mut Vec<Cause>, spec: &Value, p: &str) {
    let vols = volumes(out, json::arr(spec, "volumes"), &child(p, "volumes"));
    let host_network = json::boolean(spec, "hostNetwork") == Some(true);
    let mut seen = HashSet::new();
    let init_ctx = Ctx { volumes: &vols, host_network, init: true };
    containers(out, json::arr(spec, "initContainers"), &child(p, "initContainers"), &init_ctx, &mut seen);
    let ctrs = json::arr(spec, "containers");
    if ctrs.is_empty() {
        out.push(errs::required(&child(p, "containers"), ""));
    }
    let ctx = Ctx { volumes: &vols, host_network, init: false };
    containers(out, ctrs, &child(p, "containers"), &ctx, &mut seen);
    enum_field(out, spec, p, "restartPolicy", &["Always", "OnFailure", "Never"]);
    enum_field(out, spec, p, "dnsPolicy", &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]);
    dns_config(out, spec, p);
    validate_labels(out, spec.get("nodeSelector"), &child(p, "nodeSelector"));
    dns_names(out, spec, p);
    if let Some(ads) = json::int(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            out.push(errs::invalid_int(
                &child(p, "activeDeadlineSeconds"),
                ads,
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    tolerations(out, json::arr(spec, "tolerations"), &child(p, "tolerations"));
    security_context(out, json::present(spec, "securityContext"), &child(p, "securityContext"));
    resources::plain_list(out, spec.get("overhead"), &child(p, "overhead"));
    resources::requirements(out, json::present(spec, "resources"), &child(p, "resources"));
    for (i, s) in json::arr(spec, "imagePullSecrets").iter().enumerate() {
        if json::s(s, "name").is_empty() {
            out.push(errs::required(&child(&index(&child(p, "imagePullSecrets"), i), "name"), ""));
        }
    }
    for (i, ha) in json::arr(spec, "hostAliases").iter().enumerate() {
        let ip = json::s(ha, "ip");
        if net::ip(ip).is_none() {
            out.push(errs::invalid_str(&child(&index(&child(p, "hostAliases"), i), "ip"), ip, net::IP_MSG));
        }
    }
    if let Some(aff) = json::present(spec, "affinity") {
        affinity(out, aff, &child(p, "affinity"));
    }
    for (i, c) in json::arr(spec, "topologySpreadConstraints").iter().enumerate() {
        let cp = index(&child(p, "topologySpreadConstraints"), i);
        let skew = json::int(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            out.push(errs::invalid_int(&child(&cp, "maxSkew"), skew, "must be greater than zero"));
        }
        if json::s(c, "topologyKey").is_empty() {
            out.push(errs::required(&child(&cp, "topologyKey"), "can not be empty"));
        }
        enum_field(out, c, &cp, "whenUnsatisfiable", &["DoNotSchedule", "ScheduleAnyway"]);
    }
}

fn dns_config(out: &mut Vec<Cause>, spec: &Value, p: &str) {
    let cfg = json::present(spec, "dnsConfig");
    if json::s(spec, "dnsPolicy") == "None" {
        let nameservers = cfg.map(|c| json::arr(c, "nameservers").len()).unwrap_or(0);
        if cfg.is_none() {
            out.push(errs::required(&child(p, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"));
        } else if nameservers == 0 {
            out.push(errs::required(
                &child(&child(p, "dnsConfig"), "nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ));
        }
    }
    let Some(cfg) = cfg else { return };
    let cp = child(p, "dnsConfig");
    let ns = json::arr(cfg, "nameservers");
    if ns.len() > 3 {
        out.push(errs::invalid(
            &child(&cp, "nameservers"),
            &Value::Array(ns.to_vec()),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        let s = n.as_str().unwrap_or("");
        if net::ip(s).is_none() {
            out.push(errs::invalid_str(&index(&child(&cp, "nameservers"), i), s, "must be valid IP address"));
        }
    }
    if json::arr(cfg, "searches").len() > 32 {
        out.push(errs::invalid_str(&child(&cp, "searches"), "", "must not have more than 32 search paths"));
    }
}

/// Upstream `validateTolerations`.
pub fn tolerations(out: &mut Vec<Cause>, list: &[Value], path: &str) {
    for (i, t) in list.iter().enumerate() {
        let p = index(path, i);
        let key = json::s(t, "key");
        let op = json::s(t, "operator");
        let effect = json::s(t, "effect");
        let value = json::s(t, "value");
        if !key.is_empty() {
            for msg in qualified_name(key) {
                out.push(errs::invalid_str(&child(&p, "key"), key, &msg));
            }
        } else if op != "Exists" {
            out.push(errs::invalid_str(
                &child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if json::present(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            out.push(errs::invalid_str(
                &child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = label_value(value);
                if !msgs.is_empty() {
                    out.push(errs::invalid_str(&child(&p, "operator"), value, &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    out.push(errs::invalid(
                        &child(&p, "operator"),
                        t,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => out.push(errs::not_supported(&child(&p, "operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() {
            taint_effect(out, effect, &child(&p, "effect"));
        }
    }
}

pub fn taint_effect(out: &mut Vec<Cause>, effect: &str, p: &str) {
    let allowed = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    if !allowed.contains(&effect) {
        out.push(errs::not_supported(p, effect, &allowed));
    }
}

fn node_selector_term(out: &mut Vec<Cause>, term: &Value, p: &str) {
    for field in ["matchExpressions", "matchFields"] {
        for (i, req) in json::arr(term, field).iter().enumerate() {
            let rp = index(&child(p, field), i);
            let key = json::s(req, "key");
            if field == "matchExpressions" {
                for msg in qualified_name(key) {
                    out.push(errs::invalid_str(&child(&rp, "key"), key, &msg));
                }
            }
            let n = json::arr(req, "values").len();
            match json::s(req, "operator") {
                "In" | "NotIn" if n == 0 => out.push(errs::required(
                    &child(&rp, "values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                )),
                "Exists" | "DoesNotExist" if n > 0 => out.push(errs::forbidden(
                    &child(&rp, "values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )),
                "Gt" | "Lt" if n != 1 => out.push(errs::required(
                    &child(&rp, "values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
                other => out.push(errs::not_supported(
                    &child(&rp, "operator"),
                    other,
                    &["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"],
                )),
            }
        }
    }
}

fn pod_affinity_term(out: &mut Vec<Cause>, term: &Value, p: &str) {
    if let Some(sel) = json::present(term, "labelSelector") {
        validate_selector(out, sel, &child(p, "labelSelector"));
    }
    let key = json::s(term, "topologyKey");
    if key.is_empty() {
        out.push(errs::required(&child(p, "topologyKey"), "can not be empty"));
    } else {
        for msg in qualified_name(key) {
            out.push(errs::invalid_str(&child(p, "topologyKey"), key, &msg));
        }
    }
}

fn weight(out: &mut Vec<Cause>, w: &Value, p: &str) {
    let n = json::int(w, "weight").unwrap_or(0);
    if !(1..=100).contains(&n) {
        out.push(errs::invalid_int(&child(p, "weight"), n, "must be in the range 1-100"));
    }
}

fn affinity(out: &mut Vec<Cause>, aff: &Value, p: &str) {
    if let Some(na) = json::present(aff, "nodeAffinity") {
        let np = child(p, "nodeAffinity");
        if let Some(req) = json::present(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            let rp = child(&np, "requiredDuringSchedulingIgnoredDuringExecution");
            let terms = json::arr(req, "nodeSelectorTerms");
            if terms.is_empty() {
                out.push(errs::required(&child(&rp, "nodeSelectorTerms"), "must have at least one node selector term"));
            }
            for (i, t) in terms.iter().enumerate() {
                node_selector_term(out, t, &index(&child(&rp, "nodeSelectorTerms"), i));
            }
        }
        let pp = child(&np, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, pref) in json::arr(na, "preferredDuringSchedulingIgnoredDuringExecution").iter().enumerate() {
            let ip = index(&pp, i);
            weight(out, pref, &ip);
            node_selector_term(out, pref.get("preference").unwrap_or(&Value::Null), &child(&ip, "preference"));
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(pa) = json::present(aff, kind) else { continue };
        let kp = child(p, kind);
        let req = "requiredDuringSchedulingIgnoredDuringExecution";
        for (i, t) in json::arr(pa, req).iter().enumerate() {
            pod_affinity_term(out, t, &index(&child(&kp, req), i));
        }
        let pref = "preferredDuringSchedulingIgnoredDuringExecution";
        for (i, w) in json::arr(pa, pref).iter().enumerate() {
            let ip = index(&child(&kp, pref), i);
            weight(out, w, &ip);
            pod_affinity_term(out, w.get("podAffinityTerm").unwrap_or(&Value::Null), &child(&ip, "podAffinityTerm"));
        }
    }
}
