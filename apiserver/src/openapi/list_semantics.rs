//! The merge semantics upstream's struct tags give fields of the built-in types, as the
//! `x-kubernetes-patch-strategy` / `-patch-merge-key` (strategic merge patch, which kubectl
//! computes from these documents) and `x-kubernetes-list-type` / `-list-map-keys` /
//! `-map-type` (server-side apply) extensions. k8s-openapi's schemas carry none of them.
//!
//! The table follows k8s.io/api v1.33 and agrees with `patch::merge_keys`, which the server's
//! own patching reads; lists not named here are atomic, as upstream's default.

use serde_json::{Map, Value};

/// How a list field is merged by server-side apply.
#[derive(Clone, Copy)]
enum ListType {
    Atomic,
    Set,
    Map(&'static [&'static str]),
}

/// One annotated field: schema (component name less `io.k8s.`), property, strategic merge
/// patch strategy and merge key, and list type.
struct Field {
    schema: &'static str,
    field: &'static str,
    strategy: Option<&'static str>,
    merge_key: Option<&'static str>,
    list: Option<ListType>,
}

/// A list merged by key both ways: `patchStrategy:"merge" patchMergeKey:key`, `listType=map`.
const fn keyed(schema: &'static str, field: &'static str, key: &'static str, keys: &'static [&'static str]) -> Field {
    Field { schema, field, strategy: Some("merge"), merge_key: Some(key), list: Some(ListType::Map(keys)) }
}

/// A list of unions keyed by `name`: like [`keyed`], with `retainKeys` in the patch strategy.
const fn keyed_retain(schema: &'static str, field: &'static str) -> Field {
    Field {
        schema,
        field,
        strategy: Some("merge,retainKeys"),
        merge_key: Some("name"),
        list: Some(ListType::Map(NAME)),
    }
}

/// A scalar list merged as a set by both.
const fn set(schema: &'static str, field: &'static str, patch_merge: bool) -> Field {
    let strategy = if patch_merge { Some("merge") } else { None };
    Field { schema, field, strategy, merge_key: None, list: Some(ListType::Set) }
}

/// A list only server-side apply merges by key (no patch strategy).
const fn apply_map(schema: &'static str, field: &'static str, keys: &'static [&'static str]) -> Field {
    Field { schema, field, strategy: None, merge_key: None, list: Some(ListType::Map(keys)) }
}

const NAME: &[&str] = &["name"];
const TYPE: &[&str] = &["type"];
const IP: &[&str] = &["ip"];

static FIELDS: &[Field] = &[
    keyed("apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "uid", &["uid"]),
    set("apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", true),
    keyed_retain("api.core.v1.PodSpec", "volumes"),
    keyed("api.core.v1.PodSpec", "initContainers", "name", NAME),
    keyed("api.core.v1.PodSpec", "containers", "name", NAME),
    keyed("api.core.v1.PodSpec", "ephemeralContainers", "name", NAME),
    keyed("api.core.v1.PodSpec", "imagePullSecrets", "name", NAME),
    keyed("api.core.v1.PodSpec", "hostAliases", "ip", IP),
    keyed("api.core.v1.PodSpec", "topologySpreadConstraints", "topologyKey", &["topologyKey", "whenUnsatisfiable"]),
    keyed("api.core.v1.PodSpec", "schedulingGates", "name", NAME),
    keyed_retain("api.core.v1.PodSpec", "resourceClaims"),
    keyed("api.core.v1.Container", "ports", "containerPort", &["containerPort", "protocol"]),
    keyed("api.core.v1.Container", "env", "name", NAME),
    keyed("api.core.v1.Container", "volumeMounts", "mountPath", &["mountPath"]),
    keyed("api.core.v1.Container", "volumeDevices", "devicePath", &["devicePath"]),
    keyed("api.core.v1.EphemeralContainer", "ports", "containerPort", &["containerPort", "protocol"]),
    keyed("api.core.v1.EphemeralContainer", "env", "name", NAME),
    keyed("api.core.v1.EphemeralContainer", "volumeMounts", "mountPath", &["mountPath"]),
    keyed("api.core.v1.EphemeralContainer", "volumeDevices", "devicePath", &["devicePath"]),
    keyed("api.core.v1.ContainerStatus", "volumeMounts", "mountPath", &["mountPath"]),
    keyed("api.core.v1.ContainerStatus", "allocatedResourcesStatus", "name", NAME),
    apply_map("api.core.v1.ResourceStatus", "resources", &["resourceID"]),
    apply_map("api.core.v1.ResourceRequirements", "claims", NAME),
    keyed("api.core.v1.PodStatus", "conditions", "type", TYPE),
    keyed("api.core.v1.PodStatus", "podIPs", "ip", IP),
    keyed("api.core.v1.PodStatus", "hostIPs", "ip", IP),
    keyed_retain("api.core.v1.PodStatus", "resourceClaimStatuses"),
    set("api.core.v1.NodeSpec", "podCIDRs", true),
    keyed("api.core.v1.NodeStatus", "conditions", "type", TYPE),
    keyed("api.core.v1.NodeStatus", "addresses", "type", TYPE),
    keyed("api.core.v1.NamespaceStatus", "conditions", "type", TYPE),
    keyed("api.core.v1.ServiceSpec", "ports", "port", &["port", "protocol"]),
    keyed("api.core.v1.ServiceStatus", "conditions", "type", TYPE),
    keyed("api.core.v1.ServiceAccount", "secrets", "name", NAME),
    keyed("api.apps.v1.DeploymentStatus", "conditions", "type", TYPE),
    keyed("api.apps.v1.ReplicaSetStatus", "conditions", "type", TYPE),
    keyed("api.apps.v1.DaemonSetStatus", "conditions", "type", TYPE),
    // Upstream merges Job conditions by type in strategic merge patch but lists them atomic.
    Field {
        schema: "api.batch.v1.JobStatus",
        field: "conditions",
        strategy: Some("merge"),
        merge_key: Some("type"),
        list: Some(ListType::Atomic),
    },
    set("api.batch.v1.UncountedTerminatedPods", "succeeded", false),
    set("api.batch.v1.UncountedTerminatedPods", "failed", false),
    set("api.batch.v1.PodFailurePolicyOnExitCodesRequirement", "values", false),
    // An object field whose union members are cleared when the discriminator changes.
    Field {
        schema: "api.apps.v1.DeploymentSpec",
        field: "strategy",
        strategy: Some("retainKeys"),
        merge_key: None,
        list: None,
    },
];

/// String maps replaced whole by server-side apply (`+mapType=atomic`).
static ATOMIC_MAPS: &[(&str, &str)] =
    &[("api.core.v1.PodSpec", "nodeSelector"), ("api.core.v1.ServiceSpec", "selector")];

/// Structs replaced whole by server-side apply (`+structType=atomic`).
static ATOMIC_STRUCTS: &[&str] = &[
    "apimachinery.pkg.apis.meta.v1.LabelSelector",
    "api.core.v1.LocalObjectReference",
    "api.core.v1.ObjectReference",
    "api.core.v1.TypedLocalObjectReference",
    "api.core.v1.ConfigMapKeySelector",
    "api.core.v1.SecretKeySelector",
    "api.core.v1.ObjectFieldSelector",
    "api.core.v1.ResourceFieldSelector",
    "api.core.v1.NodeSelector",
    "api.core.v1.NodeSelectorTerm",
];

/// Adds the extensions to every schema of `schemas` the tables name.
pub(super) fn annotate(schemas: &mut Map<String, Value>) {
    for f in FIELDS {
        let Some(prop) = property(schemas, f.schema, f.field) else {
            continue;
        };
        if let Some(strategy) = f.strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), strategy.into());
        }
        if let Some(key) = f.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        match f.list {
            Some(ListType::Atomic) => {
                prop.insert("x-kubernetes-list-type".into(), "atomic".into());
            }
            Some(ListType::Set) => {
                prop.insert("x-kubernetes-list-type".into(), "set".into());
            }
            Some(ListType::Map(keys)) => {
                prop.insert("x-kubernetes-list-type".into(), "map".into());
                prop.insert("x-kubernetes-list-map-keys".into(), keys.iter().map(|k| Value::from(*k)).collect());
            }
            None => {}
        }
    }
    for (schema, field) in ATOMIC_MAPS {
        if let Some(prop) = property(schemas, schema, field) {
            prop.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
    for schema in ATOMIC_STRUCTS {
        if let Some(Value::Object(s)) = schemas.get_mut(&format!("io.k8s.{schema}")) {
            s.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
}

fn property<'a>(schemas: &'a mut Map<String, Value>, schema: &str, field: &str) -> Option<&'a mut Map<String, Value>> {
    match schemas.get_mut(&format!("io.k8s.{schema}"))?.get_mut("properties")?.get_mut(field)? {
        Value::Object(prop) => Some(prop),
        _ => None,
    }
}

/// Every `(component, property)` the tables name, for tests that check none is misspelt.
#[cfg(test)]
pub(super) fn named_fields() -> Vec<(String, &'static str)> {
    FIELDS
        .iter()
        .map(|f| (format!("io.k8s.{}", f.schema), f.field))
        .chain(ATOMIC_MAPS.iter().map(|(s, f)| (format!("io.k8s.{s}"), *f)))
        .collect()
}
