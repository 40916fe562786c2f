//! How each list field of the built-in types merges, as upstream's `patchStrategy`,
//! `patchMergeKey` and `listType`/`listMapKeys` struct tags say (k8s.io/api, 1.33).
//!
//! Strategic merge patch and server-side apply both read this table, so the two never
//! disagree about which list is keyed by what.

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole (no patch strategy): `args`, `command`, `tolerations`, ...
    Atomic,
    /// A set of scalars merged by value (`patchStrategy:"merge"` on a scalar list): `finalizers`.
    Set,
    /// A list of objects merged by key. The first key is the `patchMergeKey` strategic merge
    /// patch uses; all keys are the `listMapKeys` server-side apply uses to name items.
    Map(&'static [&'static str]),
}

const NAME: ListType = ListType::Map(&["name"]);

/// The list type of the field at `path` (field names from the object root, no indices)
/// in an object of `kind`.
pub fn list_type(kind: &str, path: &[&str]) -> ListType {
    let Some((&field, parents)) = path.split_last() else {
        return ListType::Atomic;
    };
    let parent = parents.last().copied().unwrap_or("");
    match (parent, field) {
        ("metadata", "finalizers") if parents.len() == 1 || is_template_meta(parents) => ListType::Set,
        ("metadata", "ownerReferences") => ListType::Map(&["uid"]),
        ("status", "conditions") => ListType::Map(&["type"]),
        ("status", "podIPs") | ("status", "hostIPs") => ListType::Map(&["ip"]),
        ("status", "addresses") if kind == "Node" => ListType::Map(&["type"]),
        _ if in_pod_spec(kind, parents) => pod_spec_list(field),
        _ if in_container(kind, parents) => container_list(field),
        ("spec", "ports") if kind == "Service" => ListType::Map(&["port", "protocol"]),
        ("", "secrets") if kind == "ServiceAccount" => NAME,
        ("spec", "podCIDRs") if kind == "Node" && parents.len() == 1 => ListType::Set,
        _ => ListType::Atomic,
    }
}

fn is_template_meta(parents: &[&str]) -> bool {
    parents.len() >= 2 && parents[parents.len() - 2] == "template"
}

/// Whether `parents` ends at a PodSpec: `spec` of a Pod, or `...template.spec` of a workload.
fn in_pod_spec(kind: &str, parents: &[&str]) -> bool {
    match parents {
        ["spec"] => kind == "Pod",
        [.., "template", "spec"] => true,
        _ => false,
    }
}

/// Whether `parents` ends at one container of a PodSpec.
fn in_container(kind: &str, parents: &[&str]) -> bool {
    match parents.split_last() {
        Some((&("containers" | "initContainers" | "ephemeralContainers"), rest)) => in_pod_spec(kind, rest),
        _ => false,
    }
}

fn pod_spec_list(field: &str) -> ListType {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "schedulingGates"
        | "resourceClaims" => NAME,
        "hostAliases" => ListType::Map(&["ip"]),
        "topologySpreadConstraints" => ListType::Map(&["topologyKey", "whenUnsatisfiable"]),
        _ => ListType::Atomic,
    }
}

fn container_list(field: &str) -> ListType {
    match field {
        "ports" => ListType::Map(&["containerPort", "protocol"]),
        "env" => NAME,
        "volumeMounts" => ListType::Map(&["mountPath"]),
        "volumeDevices" => ListType::Map(&["devicePath"]),
        _ => ListType::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_templates_merge_containers_by_name() {
        let p = ["spec", "template", "spec", "containers"];
        assert_eq!(list_type("Deployment", &p), NAME);
        let p = ["spec", "jobTemplate", "spec", "template", "spec", "containers", "ports"];
        assert_eq!(list_type("CronJob", &p), ListType::Map(&["containerPort", "protocol"]));
        assert_eq!(list_type("Pod", &["spec", "containers", "env"]), NAME);
    }

    #[test]
    fn unlisted_lists_are_atomic() {
        assert_eq!(list_type("Pod", &["spec", "tolerations"]), ListType::Atomic);
        assert_eq!(list_type("Pod", &["spec", "containers", "args"]), ListType::Atomic);
        assert_eq!(list_type("Deployment", &["spec", "ports"]), ListType::Atomic);
    }

    #[test]
    fn metadata_lists() {
        assert_eq!(list_type("Secret", &["metadata", "finalizers"]), ListType::Set);
        assert_eq!(list_type("Pod", &["metadata", "ownerReferences"]), ListType::Map(&["uid"]));
        assert_eq!(list_type("Service", &["spec", "ports"]), ListType::Map(&["port", "protocol"]));
        assert_eq!(list_type("Node", &["spec", "podCIDRs"]), ListType::Set);
    }
}
