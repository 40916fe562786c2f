//! The registry of resources the API server serves: group, version, kind, plural, scope,
//! short names, categories and subresources. Discovery, routing and storage keys all read it.

/// Whether a resource lives inside a namespace or at cluster scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// A subresource served under a resource (`pods/status`, `deployments/scale`, ...).
#[derive(Debug, Clone, Copy)]
pub struct SubresourceInfo {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub scope: Scope,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [SubresourceInfo],
}

/// The verbs every served resource supports, unless [`ResourceInfo::verbs`] says fewer.
pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Namespaces cannot be deleted as a collection (upstream's namespace storage has no
/// DeleteCollection).
const NAMESPACE_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn status_sub(group: &'static str, version: &'static str, kind: &'static str) -> SubresourceInfo {
    SubresourceInfo { name: "status", group, version, kind, verbs: STATUS_VERBS }
}

const SCALE: SubresourceInfo =
    SubresourceInfo { name: "scale", group: "autoscaling", version: "v1", kind: "Scale", verbs: STATUS_VERBS };

macro_rules! res {
    ($g:expr, $v:expr, $k:expr, $p:expr, $s:expr, $scope:ident, $short:expr, $cat:expr, $subs:expr) => {
        ResourceInfo {
            group: $g,
            version: $v,
            kind: $k,
            plural: $p,
            singular: $s,
            scope: Scope::$scope,
            short_names: $short,
            categories: $cat,
            subresources: $subs,
        }
    };
}

/// Every resource skiff serves, core group first (kubectl resolves ambiguous names in this order).
pub static RESOURCES: &[ResourceInfo] = &[
    res!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        Namespaced,
        &["po"],
        &["all"],
        &[
            status_sub("", "v1", "Pod"),
            SubresourceInfo { name: "binding", group: "", version: "v1", kind: "Binding", verbs: &["create"] },
            SubresourceInfo { name: "eviction", group: "policy", version: "v1", kind: "Eviction", verbs: &["create"] },
            SubresourceInfo { name: "log", group: "", version: "v1", kind: "Pod", verbs: &["get"] },
            SubresourceInfo {
                name: "exec",
                group: "",
                version: "v1",
                kind: "PodExecOptions",
                verbs: &["create", "get"]
            },
            SubresourceInfo {
                name: "attach",
                group: "",
                version: "v1",
                kind: "PodAttachOptions",
                verbs: &["create", "get"]
            },
            SubresourceInfo {
                name: "portforward",
                group: "",
                version: "v1",
                kind: "PodPortForwardOptions",
                verbs: &["create", "get"]
            },
        ]
    ),
    res!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        Namespaced,
        &["svc"],
        &["all"],
        &[status_sub("", "v1", "Service")]
    ),
    res!("", "v1", "Endpoints", "endpoints", "endpoints", Namespaced, &["ep"], &[], &[]),
    res!("", "v1", "Secret", "secrets", "secret", Namespaced, &[], &[], &[]),
    res!("", "v1", "ConfigMap", "configmaps", "configmap", Namespaced, &["cm"], &[], &[]),
    res!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        Cluster,
        &["ns"],
        &[],
        &[
            status_sub("", "v1", "Namespace"),
            SubresourceInfo { name: "finalize", group: "", version: "v1", kind: "Namespace", verbs: &["update"] },
        ]
    ),
    res!("", "v1", "Node", "nodes", "node", Cluster, &["no"], &[], &[status_sub("", "v1", "Node")]),
    res!("", "v1", "Event", "events", "event", Namespaced, &["ev"], &[], &[]),
    res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", Namespaced, &["sa"], &[], &[]),
    res!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        Namespaced,
        &["deploy"],
        &["all"],
        &[status_sub("apps", "v1", "Deployment"), SCALE,]
    ),
    res!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        Namespaced,
        &["rs"],
        &["all"],
        &[status_sub("apps", "v1", "ReplicaSet"), SCALE,]
    ),
    res!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        Namespaced,
        &["ds"],
        &["all"],
        &[status_sub("apps", "v1", "DaemonSet"),]
    ),
    res!("batch", "v1", "Job", "jobs", "job", Namespaced, &[], &["all"], &[status_sub("batch", "v1", "Job")]),
    res!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        Namespaced,
        &["cj"],
        &["all"],
        &[status_sub("batch", "v1", "CronJob"),]
    ),
    res!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", Namespaced, &[], &[], &[]),
    res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", Namespaced, &[], &[], &[]),
];

impl ResourceInfo {
    /// The verbs this resource supports (discovery, OpenAPI and routing agree on them).
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.group.is_empty() && self.plural == "namespaces" {
            NAMESPACE_VERBS
        } else {
            VERBS
        }
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs().contains(&verb)
    }

    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// `deployments.apps`, or `pods` for the core group: the name used in error messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The prefix under which all objects of this resource are stored: `/registry/<plural>/`.
    /// Resources of a non-core group include the group so names never collide.
    pub fn key_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/registry/{}/", self.plural)
        } else {
            format!("/registry/{}.{}/", self.plural, self.group)
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced() => format!("{}{}/{}", self.key_prefix(), ns, name),
            _ => format!("{}{}", self.key_prefix(), name),
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&'static SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

/// Finds a resource by group, version and plural name (the URL form).
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by apiVersion (`v1`, `apps/v1`) and kind.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = split_api_version(api_version);
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The group-versions served, core first.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_include_group_for_named_groups() {
        let d = by_plural("apps", "v1", "deployments").expect("deployments served");
        assert_eq!(d.key(Some("default"), "web"), "/registry/deployments.apps/default/web");
        let ns = by_kind("v1", "Namespace").expect("namespaces served");
        assert_eq!(ns.key(Some("ignored"), "kube-system"), "/registry/namespaces/kube-system");
    }

    #[test]
    fn plural_and_kind_lookups_agree() {
        for r in RESOURCES {
            let a = by_plural(r.group, r.version, r.plural).expect("by plural");
            let b = by_kind(&r.api_version(), r.kind).expect("by kind");
            assert_eq!(a.kind, b.kind);
        }
        assert!(by_plural("apps", "v1", "pods").is_none());
    }
}
