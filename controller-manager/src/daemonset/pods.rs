//! Daemon pods: the template hash that marks a pod as current, the pod for one node (pinned to
//! it by required node affinity on `metadata.name`, as upstream since 1.12 — the scheduler
//! binds it), and reading back which node a pod targets and whether it is ready/available.
//!
//! Deviation: upstream names the revision with a ControllerRevision; skiff does not serve
//! ControllerRevisions, so `controller-revision-hash` is the FNV-1a hash of the template alone.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::placement::add_daemon_tolerations;
use api::owner::controller_ref;

pub const HASH_LABEL: &str = "controller-revision-hash";
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// Upstream `rand.SafeEncodeString` alphabet (no vowels, no look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The hash of the DaemonSet's pod template.
pub fn template_hash(ds: &DaemonSet) -> String {
    let template = ds.spec.as_ref().map(|s| &s.template);
    let bytes = serde_json::to_vec(&template).unwrap_or_default();
    let mut h: u32 = 0x811c9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h.to_string().bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

fn template_generation(ds: &DaemonSet) -> Option<&String> {
    ds.metadata.annotations.as_ref()?.get(TEMPLATE_GENERATION_ANNOTATION)
}

/// The pod spec of `ds` with the daemon tolerations (what placement is checked against).
pub fn daemon_spec(ds: &DaemonSet) -> PodSpec {
    let mut spec = ds.spec.as_ref().and_then(|s| s.template.spec.clone()).unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    spec
}

/// Replaces the required node affinity by one term pinning the pod to `node`
/// (upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`).
fn pin_to(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.into()]),
        }]),
        match_expressions: None,
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector { node_selector_terms: vec![term] });
}

/// A new daemon pod of `ds` for `node`.
pub fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let tmeta = ds.spec.as_ref().and_then(|s| s.template.metadata.clone()).unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.into());
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.clone());
    }
    let mut spec = daemon_spec(ds);
    pin_to(&mut spec, node);
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.metadata.name.as_deref().unwrap_or_default())),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The node a daemon pod is for: its `nodeName`, else the node its affinity pins it to
/// (upstream `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find_map(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        (r.key == "metadata.name" && r.operator == "In" && values.len() == 1).then(|| values[0].clone())
    })
}

/// Whether the pod runs the DaemonSet's current template (upstream `IsPodUpdated`).
pub fn is_updated(pod: &Pod, ds: &DaemonSet, hash: &str) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k));
    label(HASH_LABEL).is_some_and(|h| h == hash)
        || template_generation(ds).is_some_and(|g| label(TEMPLATE_GENERATION_LABEL) == Some(g))
}

pub use client_runtime::pods::{is_available, is_ready, phase};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds(image: &str) -> DaemonSet {
        serde_json::from_value(json!({"metadata": {"name": "agent", "namespace": "kube-system", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "c", "image": image}]}}}}))
        .expect("ds")
    }

    #[test]
    fn hash_follows_the_template() {
        let (a, b) = (ds("agent:1"), ds("agent:2"));
        assert_eq!(template_hash(&a), template_hash(&ds("agent:1")));
        assert_ne!(template_hash(&a), template_hash(&b));
        assert!(template_hash(&a).bytes().all(|c| ALPHANUMS.contains(&c)));
    }

    #[test]
    fn pods_are_pinned_and_labelled() {
        let d = ds("agent:1");
        let hash = template_hash(&d);
        let pod = new_pod(&d, "node-7", &hash);
        assert_eq!(target_node(&pod).as_deref(), Some("node-7"));
        assert!(is_updated(&pod, &d, &hash));
        assert!(!is_updated(&pod, &ds("agent:2"), &template_hash(&ds("agent:2"))));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        assert_eq!(pod.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("agent"));
        let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("DaemonSet", Some(true)));
        let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
        assert_eq!(tolerations.len(), 6);
    }
}
