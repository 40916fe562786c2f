//! One container (`containers`, `initContainers`): name, image, policies, ports, env, mounts,
//! resources, probes, lifecycle hooks, restartPolicy, securityContext.

use super::meta::duplicate_indices;
use super::resources;
use crate::admission::errs::{self, child, index};
use crate::admission::json;
use crate::admission::labels::qualified_name;
use crate::admission::names::{config_key, dns1123_label, port_name, port_num};
use api::Cause;
use serde_json::Value;
use std::collections::HashSet;

/// What a container is checked against.
pub struct Ctx<'a> {
    /// Names of the pod's volumes.
    pub volumes: &'a HashSet<String>,
    pub host_network: bool,
    /// Validating `initContainers`.
    pub init: bool,
}

/// A list of containers. `seen` carries names across `containers` and `initContainers`.
pub fn containers(out: &mut Vec<Cause>, list: &[Value], path: &str, ctx: &Ctx<'_>, seen: &mut HashSet<String>) {
    for (i, c) in list.iter().enumerate() {
        let p = index(path, i);
        let name = json::s(c, "name");
        if name.is_empty() {
            out.push(errs::required(&child(&p, "name"), ""));
        } else {
            for msg in dns1123_label(name) {
                out.push(errs::invalid_str(&child(&p, "name"), name, &msg));
            }
            if !seen.insert(name.to_string()) {
                out.push(errs::duplicate(&child(&p, "name"), &Value::String(name.into())));
            }
        }
        container(out, c, &p, ctx);
    }
}

fn container(out: &mut Vec<Cause>, c: &Value, p: &str, ctx: &Ctx<'_>) {
    let image = json::s(c, "image");
    if image.is_empty() {
        out.push(errs::required(&child(p, "image"), ""));
    } else if image.trim() != image {
        out.push(errs::invalid_str(&child(p, "image"), image, "must not have leading or trailing whitespace"));
    }
    enum_field(out, c, p, "imagePullPolicy", &["Always", "IfNotPresent", "Never"]);
    enum_field(out, c, p, "terminationMessagePolicy", &["File", "FallbackToLogsOnError"]);
    ports(out, c, p, ctx.host_network);
    env(out, c, p);
    volume_mounts(out, c, p, ctx.volumes);
    resources::requirements(out, json::present(c, "resources"), &child(p, "resources"));
    let restart = json::opt_s(c, "restartPolicy");
    let sidecar = ctx.init && restart == Some("Always");
    match (ctx.init, restart) {
        (_, None) => {}
        (false, Some(_)) => {
            out.push(errs::forbidden(&child(p, "restartPolicy"), "may not be set for non-init containers"))
        }
        (true, Some(r)) if r != "Always" => out.push(errs::not_supported(&child(p, "restartPolicy"), r, &["Always"])),
        _ => {}
    }
    for probe_key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(pr) = json::present(c, probe_key) else { continue };
        let pp = child(p, probe_key);
        if ctx.init && !sidecar {
            out.push(errs::forbidden(&pp, "may not be set for init containers without restartPolicy=Always"));
            continue;
        }
        probe(out, pr, &pp, probe_key);
    }
    if let Some(lc) = json::present(c, "lifecycle") {
        if ctx.init && !sidecar {
            out.push(errs::forbidden(
                &child(p, "lifecycle"),
                "may not be set for init containers without restartPolicy=Always",
            ));
        } else {
            for hook in ["postStart", "preStop"] {
                if let Some(h) = json::present(lc, hook) {
                    handler(out, h, &child(&child(p, "lifecycle"), hook), &["exec", "httpGet", "tcpSocket", "sleep"]);
                }
            }
        }
    }
    security_context(out, json::present(c, "securityContext"), &child(p, "securityContext"));
}

/// A required string field restricted to a set of values.
pub fn enum_field(out: &mut Vec<Cause>, obj: &Value, path: &str, field: &str, allowed: &[&str]) {
    let v = json::s(obj, field);
    let p = child(path, field);
    if v.is_empty() {
        out.push(errs::required(&p, ""));
    } else if !allowed.contains(&v) {
        out.push(errs::not_supported(&p, v, allowed));
    }
}

/// Upstream `validateProtocol`.
pub fn protocol(out: &mut Vec<Cause>, obj: &Value, path: &str) {
    enum_field(out, obj, path, "protocol", &["SCTP", "TCP", "UDP"]);
}

fn ports(out: &mut Vec<Cause>, c: &Value, p: &str, host_network: bool) {
    let mut names = HashSet::new();
    for (i, port) in json::arr(c, "ports").iter().enumerate() {
        let pp = index(&child(p, "ports"), i);
        let name = json::s(port, "name");
        if !name.is_empty() {
            let msgs = port_name(name);
            for msg in &msgs {
                out.push(errs::invalid_str(&child(&pp, "name"), name, msg));
            }
            if msgs.is_empty() && !names.insert(name) {
                out.push(errs::duplicate(&child(&pp, "name"), &Value::String(name.into())));
            }
        }
        let cp = json::int(port, "containerPort").unwrap_or(0);
        if cp == 0 {
            out.push(errs::required(&child(&pp, "containerPort"), ""));
        } else {
            for msg in port_num(cp) {
                out.push(errs::invalid_int(&child(&pp, "containerPort"), cp, &msg));
            }
        }
        if let Some(hp) = json::int(port, "hostPort").filter(|&h| h != 0) {
            for msg in port_num(hp) {
                out.push(errs::invalid_int(&child(&pp, "hostPort"), hp, &msg));
            }
            if host_network && hp != cp {
                out.push(errs::invalid_int(
                    &child(&pp, "hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        protocol(out, port, &pp);
    }
}

/// Upstream relaxed environment variable names (the 1.33 default).
fn env_var_name(s: &str) -> Vec<String> {
    if !s.is_empty() && s.bytes().all(|b| (32..=126).contains(&b) && b != b'=') {
        Vec::new()
    } else {
        vec!["a valid environment variable name must consist only of printable ASCII characters other than '='".into()]
    }
}

const FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// `fieldRef` (`ObjectFieldSelector`); `whole_maps` allows `metadata.labels`/`metadata.annotations`
/// unsubscripted (downward API volumes).
pub fn field_ref(out: &mut Vec<Cause>, fr: &Value, p: &str, whole_maps: bool) {
    if json::s(fr, "apiVersion").is_empty() {
        out.push(errs::required(&child(p, "apiVersion"), ""));
    }
    let fp = json::s(fr, "fieldPath");
    let fpp = child(p, "fieldPath");
    if fp.is_empty() {
        out.push(errs::required(&fpp, ""));
        return;
    }
    for map in ["metadata.labels", "metadata.annotations"] {
        if let Some(rest) = fp.strip_prefix(map).and_then(|r| r.strip_prefix("['")).and_then(|r| r.strip_suffix("']")) {
            for msg in qualified_name(&rest.to_lowercase()) {
                out.push(errs::invalid_str(&fpp, fp, &msg));
            }
            return;
        }
    }
    let allowed: Vec<&str> = FIELD_PATHS
        .iter()
        .copied()
        .filter(|f| whole_maps || !matches!(*f, "metadata.annotations" | "metadata.labels"))
        .collect();
    if !allowed.contains(&fp) {
        out.push(errs::not_supported(&fpp, fp, &allowed));
    }
}

const RESOURCE_REFS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `resourceFieldRef`.
pub fn resource_ref(out: &mut Vec<Cause>, rr: &Value, p: &str) {
    let r = json::s(rr, "resource");
    if r.is_empty() {
        out.push(errs::required(&child(p, "resource"), ""));
    } else if !RESOURCE_REFS.contains(&r)
        && !r.starts_with("limits.hugepages-")
        && !r.starts_with("requests.hugepages-")
    {
        out.push(errs::not_supported(&child(p, "resource"), r, RESOURCE_REFS));
    }
    if let Some(d) = json::present(rr, "divisor") {
        resources::parse_nonnegative(out, &child(p, "divisor"), d);
    }
}

fn key_ref(out: &mut Vec<Cause>, r: &Value, p: &str) {
    if json::s(r, "name").is_empty() {
        out.push(errs::required(&child(p, "name"), ""));
    }
    let k = json::s(r, "key");
    if k.is_empty() {
        out.push(errs::required(&child(p, "key"), ""));
    } else {
        for msg in config_key(k) {
            out.push(errs::invalid_str(&child(p, "key"), k, &msg));
        }
    }
}

fn env(out: &mut Vec<Cause>, c: &Value, p: &str) {
    for (i, e) in json::arr(c, "env").iter().enumerate() {
        let ep = index(&child(p, "env"), i);
        let name = json::s(e, "name");
        if name.is_empty() {
            out.push(errs::required(&child(&ep, "name"), ""));
        } else {
            for msg in env_var_name(name) {
                out.push(errs::invalid_str(&child(&ep, "name"), name, &msg));
            }
        }
        let Some(vf) = json::present(e, "valueFrom") else { continue };
        let vfp = child(&ep, "valueFrom");
        if !json::s(e, "value").is_empty() {
            out.push(errs::invalid_str(&vfp, "", "may not be specified when `value` is not empty"));
        }
        let set: Vec<&str> = ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"]
            .into_iter()
            .filter(|k| json::present(vf, k).is_some())
            .collect();
        match set.as_slice() {
            [] => out.push(errs::invalid_str(
                &vfp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )),
            [one] => {
                let sub = vf.get(*one).unwrap_or(&Value::Null);
                let sp = child(&vfp, one);
                match *one {
                    "fieldRef" => field_ref(out, sub, &sp, false),
                    "resourceFieldRef" => resource_ref(out, sub, &sp),
                    _ => key_ref(out, sub, &sp),
                }
            }
            _ => out.push(errs::invalid_str(&vfp, "", "may not have more than one field specified at a time")),
        }
    }
    for (i, ef) in json::arr(c, "envFrom").iter().enumerate() {
        let ep = index(&child(p, "envFrom"), i);
        let prefix = json::s(ef, "prefix");
        if !prefix.is_empty() {
            for msg in env_var_name(prefix) {
                out.push(errs::invalid_str(&child(&ep, "prefix"), prefix, &msg));
            }
        }
        let set: Vec<&str> =
            ["configMapRef", "secretRef"].into_iter().filter(|k| json::present(ef, k).is_some()).collect();
        match set.as_slice() {
            [] => out.push(errs::invalid_str(&ep, "", "must specify one of: `configMapRef` or `secretRef`")),
            [one] => {
                if json::at(ef, &[one, "name"]).and_then(Value::as_str).unwrap_or("").is_empty() {
                    out.push(errs::required(&child(&child(&ep, one), "name"), ""));
                }
            }
            _ => out.push(errs::invalid_str(&ep, "", "may not have more than one field specified at a time")),
        }
    }
}

/// Upstream `validateLocalDescendingPath`.
pub fn local_descending_path(out: &mut Vec<Cause>, s: &str, p: &str) {
    if s.starts_with('/') {
        out.push(errs::invalid_str(p, s, "must be a relative path"));
    }
    if s.split('/').any(|part| part == "..") {
        out.push(errs::invalid_str(p, s, "must not contain '..'"));
    }
}

fn volume_mounts(out: &mut Vec<Cause>, c: &Value, p: &str, volumes: &HashSet<String>) {
    let mounts = json::arr(c, "volumeMounts");
    for (i, m) in mounts.iter().enumerate() {
        let mp = index(&child(p, "volumeMounts"), i);
        let name = json::s(m, "name");
        if name.is_empty() {
            out.push(errs::required(&child(&mp, "name"), ""));
        } else if !volumes.contains(name) {
            out.push(api::Cause::new(
                "FieldValueNotFound",
                child(&mp, "name"),
                format!("Not found: {}", errs::quote(name)),
            ));
        }
        let path = json::s(m, "mountPath");
        if path.is_empty() {
            out.push(errs::required(&child(&mp, "mountPath"), ""));
        }
        let sub = json::s(m, "subPath");
        if !sub.is_empty() {
            local_descending_path(out, sub, &child(&mp, "subPath"));
        }
        if let Some(prop) = json::opt_s(m, "mountPropagation") {
            let allowed = ["Bidirectional", "HostToContainer", "None"];
            if !allowed.contains(&prop) {
                out.push(errs::not_supported(&child(&mp, "mountPropagation"), prop, &allowed));
            }
        }
    }
    for (i, path) in duplicate_indices(mounts.iter().map(|m| json::s(m, "mountPath"))) {
        out.push(errs::invalid_str(&child(&index(&child(p, "volumeMounts"), i), "mountPath"), path, "must be unique"));
    }
}

/// An `IntOrString` port: a number 1–65535 or an IANA port name.
pub fn port_num_or_name(out: &mut Vec<Cause>, v: Option<&Value>, p: &str) {
    match v {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for msg in port_num(n) {
                out.push(errs::invalid_int(p, n, &msg));
            }
        }
        Some(Value::String(s)) if !s.is_empty() => {
            for msg in port_name(s) {
                out.push(errs::invalid_str(p, s, &msg));
            }
        }
        _ => out.push(errs::required(p, "")),
    }
}

/// A probe or lifecycle handler: exactly one of `kinds`, each well-formed.
fn handler(out: &mut Vec<Cause>, h: &Value, p: &str, kinds: &[&str]) {
    let set: Vec<&str> = kinds.iter().copied().filter(|k| json::present(h, k).is_some()).collect();
    match set.first() {
        None => out.push(errs::required(p, "must specify a handler type")),
        Some(_) if set.len() > 1 => {
            for extra in set.iter().skip(1) {
                out.push(errs::forbidden(&child(p, extra), "may not specify more than 1 handler type"));
            }
        }
        Some(&k) => {
            let sub = h.get(k).unwrap_or(&Value::Null);
            let sp = child(p, k);
            match k {
                "exec" if json::arr(sub, "command").is_empty() => {
                    out.push(errs::required(&child(&sp, "command"), ""));
                }
                "httpGet" => {
                    port_num_or_name(out, sub.get("port"), &child(&sp, "port"));
                    let scheme = json::s(sub, "scheme");
                    if !scheme.is_empty() && scheme != "HTTP" && scheme != "HTTPS" {
                        out.push(errs::not_supported(&child(&sp, "scheme"), scheme, &["HTTP", "HTTPS"]));
                    }
                }
                "tcpSocket" => port_num_or_name(out, sub.get("port"), &child(&sp, "port")),
                "grpc" => {
                    let port = json::int(sub, "port").unwrap_or(0);
                    for msg in port_num(port) {
                        out.push(errs::invalid_int(&child(&sp, "port"), port, &msg));
                    }
                }
                "sleep" => errs::nonnegative(out, &child(&sp, "seconds"), json::int(sub, "seconds")),
                _ => {}
            }
        }
    }
}

fn probe(out: &mut Vec<Cause>, pr: &Value, p: &str, which: &str) {
    handler(out, pr, p, &["exec", "httpGet", "tcpSocket", "grpc"]);
    for f in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        errs::nonnegative(out, &child(p, f), json::int(pr, f));
    }
    if which != "readinessProbe" {
        if let Some(s) = json::int(pr, "successThreshold").filter(|&s| s != 1) {
            out.push(errs::invalid_int(&child(p, "successThreshold"), s, "must be 1"));
        }
    }
    if let Some(t) = json::int(pr, "terminationGracePeriodSeconds") {
        let tp = child(p, "terminationGracePeriodSeconds");
        if which == "readinessProbe" {
            out.push(errs::invalid_int(&tp, t, "must not be set for readinessProbes"));
        } else if t <= 0 {
            out.push(errs::invalid_int(&tp, t, "must be greater than 0"));
        }
    }
}

/// User and group ids of a pod or container security context.
pub fn security_context(out: &mut Vec<Cause>, sc: Option<&Value>, p: &str) {
    let Some(sc) = sc else { return };
    for f in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(id) = json::int(sc, f) {
            if !(0..=i64::from(i32::MAX)).contains(&id) {
                out.push(errs::invalid_int(&child(p, f), id, "must be between 0 and 2147483647, inclusive"));
            }
        }
    }
    if json::boolean(sc, "privileged") == Some(true) && json::boolean(sc, "allowPrivilegeEscalation") == Some(false) {
        out.push(errs::invalid_str(p, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"));
    }
}
