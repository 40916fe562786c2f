//! Pod and pod-template defaults: `SetDefaults_PodSpec`, `SetDefaults_Container`, probes, ports,
//! volumes, env field refs; for Pods only also `SetDefaults_Pod` (requests from limits,
//! enableServiceLinks, host-network ports) and the ServiceAccount, Priority and
//! DefaultTolerationSeconds admission plugins.

use super::DefaultOptions;
use crate::admission::json::{self, default, default_str, each_mut};
use serde_json::{json, Value};

/// A whole Pod.
pub fn pod(obj: &mut Value, opts: &DefaultOptions) {
    let Some(spec) = json::ensure_obj(obj, "spec") else { return };
    pod_spec(spec);
    pod_only(spec, opts);
}

/// A `PodTemplateSpec` at `template` (Deployment, ReplicaSet, DaemonSet, Job, CronJob).
pub fn template(template: &mut Value) {
    if let Some(spec) = json::ensure_obj(template, "spec") {
        pod_spec(spec);
    }
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

fn pod_spec(spec: &mut Value) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    default_str(spec, "schedulerName", "default-scheduler");
    // v1 conversion keeps the deprecated `serviceAccount` in step with `serviceAccountName`.
    let sa = json::s(spec, "serviceAccountName").to_string();
    let deprecated = json::s(spec, "serviceAccount").to_string();
    if sa.is_empty() && !deprecated.is_empty() {
        default_str(spec, "serviceAccountName", &deprecated);
    } else if !sa.is_empty() {
        if let Some(m) = spec.as_object_mut() {
            m.insert("serviceAccount".into(), Value::String(sa));
        }
    }
    for list in CONTAINER_LISTS {
        for c in each_mut(spec, list) {
            container(c);
        }
    }
    for v in each_mut(spec, "volumes") {
        volume(v);
    }
}

fn container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    let policy = pull_policy(json::s(c, "image"));
    default_str(c, "imagePullPolicy", policy);
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    default(c, "resources", json!({}));
    for p in each_mut(c, "ports") {
        default_str(p, "protocol", "TCP");
    }
    for probe_key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe_key).filter(|p| p.is_object()) {
            probe(p);
        }
    }
    if let Some(lc) = c.get_mut("lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook) {
                http_get(h);
            }
        }
    }
    for e in each_mut(c, "env") {
        if let Some(fr) = e.get_mut("valueFrom").and_then(|vf| vf.get_mut("fieldRef")) {
            default_str(fr, "apiVersion", "v1");
        }
    }
}

/// `:latest` or no tag → `Always`; any other tag or a digest → `IfNotPresent`.
pub fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn probe(p: &mut Value) {
    default(p, "timeoutSeconds", json!(1));
    default(p, "periodSeconds", json!(10));
    default(p, "successThreshold", json!(1));
    default(p, "failureThreshold", json!(3));
    http_get(p);
    // `GRPCAction.service` is `+default=""`.
    if let Some(g) = p.get_mut("grpc").filter(|g| g.is_object()) {
        default(g, "service", json!(""));
    }
}

fn http_get(handler: &mut Value) {
    if let Some(h) = handler.get_mut("httpGet").filter(|h| h.is_object()) {
        default_str(h, "path", "/");
        default_str(h, "scheme", "HTTP");
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// The volume sources a volume sets.
pub fn volume_sources(v: &Value) -> Vec<&'static str> {
    VOLUME_SOURCES.iter().copied().filter(|k| json::present(v, k).is_some()).collect()
}

fn volume(v: &mut Value) {
    if !v.is_object() {
        return;
    }
    if volume_sources(v).is_empty() {
        default(v, "emptyDir", json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(src).filter(|s| s.is_object()) {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = v.get_mut("hostPath").filter(|h| h.is_object()) {
        default(h, "type", json!(""));
    }
    // The generated defaulters' `+default` tags and SetDefaults_* of the remaining sources.
    if let Some(d) = v.get_mut("iscsi").filter(|d| d.is_object()) {
        default_str(d, "iscsiInterface", "default");
    }
    if let Some(d) = v.get_mut("rbd").filter(|d| d.is_object()) {
        default_str(d, "pool", "rbd");
        default_str(d, "user", "admin");
        default_str(d, "keyring", "/etc/ceph/keyring");
    }
    if let Some(d) = v.get_mut("azureDisk").filter(|d| d.is_object()) {
        default(d, "cachingMode", json!("ReadWrite"));
        default(d, "kind", json!("Shared"));
        default(d, "fsType", json!("ext4"));
        default(d, "readOnly", json!(false));
    }
    if let Some(d) = v.get_mut("scaleIO").filter(|d| d.is_object()) {
        default_str(d, "storageMode", "ThinProvisioned");
        default_str(d, "fsType", "xfs");
    }
    if let Some(spec) = v
        .get_mut("ephemeral")
        .and_then(|e| e.get_mut("volumeClaimTemplate"))
        .and_then(|t| t.get_mut("spec"))
        .filter(|s| s.is_object())
    {
        default(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(d) = v.get_mut("downwardAPI") {
        for item in each_mut(d, "items") {
            if let Some(fr) = item.get_mut("fieldRef") {
                default_str(fr, "apiVersion", "v1");
            }
        }
    }
    if let Some(p) = v.get_mut("projected") {
        for src in each_mut(p, "sources") {
            if let Some(t) = src.get_mut("serviceAccountToken").filter(|t| t.is_object()) {
                default(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = src.get_mut("downwardAPI") {
                for item in each_mut(d, "items") {
                    if let Some(fr) = item.get_mut("fieldRef") {
                        default_str(fr, "apiVersion", "v1");
                    }
                }
            }
        }
    }
}

/// Defaults that upstream applies to Pod objects but not to pod templates.
fn pod_only(spec: &mut Value, opts: &DefaultOptions) {
    default(spec, "enableServiceLinks", json!(true));
    let host_network = json::boolean(spec, "hostNetwork") == Some(true);
    for list in ["containers", "initContainers"] {
        for c in each_mut(spec, list) {
            requests_from_limits(c);
            if host_network {
                for p in each_mut(c, "ports") {
                    if let Some(cp) = p.get("containerPort").cloned() {
                        default(p, "hostPort", cp);
                    }
                }
            }
        }
    }
    // ServiceAccount admission.
    default_str(spec, "serviceAccountName", "default");
    let sa = json::s(spec, "serviceAccountName").to_string();
    default_str(spec, "serviceAccount", &sa);
    // Priority admission (no PriorityClass objects are served: only the built-in system classes).
    let priority = match json::s(spec, "priorityClassName") {
        "system-node-critical" => 2_000_001_000,
        "system-cluster-critical" => 2_000_000_000,
        _ => 0,
    };
    default(spec, "priority", json!(priority));
    default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
    default_toleration_seconds(spec, opts);
}

/// `SetDefaults_Pod`: a resource with a limit but no request is requested at its limit.
fn requests_from_limits(c: &mut Value) {
    let Some(limits) = json::at(c, &["resources", "limits"]).and_then(Value::as_object).cloned() else { return };
    if limits.is_empty() {
        return;
    }
    let Some(res) = json::ensure_obj(c, "resources") else { return };
    let Some(req) = json::ensure_obj(res, "requests").and_then(Value::as_object_mut) else { return };
    for (k, v) in limits {
        req.entry(k).or_insert(v);
    }
}

/// The DefaultTolerationSeconds admission plugin.
fn default_toleration_seconds(spec: &mut Value, opts: &DefaultOptions) {
    let tolerates = |key: &str| {
        json::arr(spec, "tolerations").iter().any(|t| {
            let k = json::s(t, "key");
            let e = json::s(t, "effect");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let add: Vec<Value> = [
        ("node.kubernetes.io/not-ready", opts.not_ready_toleration_seconds),
        ("node.kubernetes.io/unreachable", opts.unreachable_toleration_seconds),
    ]
    .into_iter()
    .filter(|(k, _)| !tolerates(k))
    .map(|(k, secs)| json!({"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs}))
    .collect();
    if add.is_empty() {
        return;
    }
    default(spec, "tolerations", json!([]));
    if let Some(list) = spec.get_mut("tolerations").and_then(Value::as_array_mut) {
        list.extend(add);
    }
}
