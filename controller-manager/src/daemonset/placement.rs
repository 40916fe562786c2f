//! Which nodes a DaemonSet runs on (upstream `NodeShouldRunDaemonPod`): the template's
//! `nodeName`, nodeSelector and required node affinity must match the node, and its taints
//! with effect NoSchedule/NoExecute must be tolerated — with the tolerations every daemon pod
//! gets (upstream `AddOrUpdateDaemonPodTolerations`). A pod already running may stay on a node
//! whose NoSchedule taints it does not tolerate, as long as it tolerates the NoExecute ones.

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration};

/// The tolerations added to every daemon pod.
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut keys = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        keys.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    keys.into_iter()
        .map(|(key, effect)| Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        })
        .collect()
}

/// Adds the daemon tolerations that `spec` does not already carry (same key and effect).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network.unwrap_or(false);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for t in daemon_tolerations(host_network) {
        tolerations.retain(|x| !(x.key == t.key && x.effect == t.effect));
        tolerations.push(t);
    }
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
        return false;
    }
    if t.key.as_deref().is_some_and(|k| !k.is_empty() && k != taint.key) {
        return false;
    }
    match t.operator.as_deref() {
        Some("Exists") => true,
        None | Some("") | Some("Equal") => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        Some(_) => false,
    }
}

fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration], effects: &[&str]) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) =
                (value.and_then(|v| v.parse::<i64>().ok()), values.first().and_then(|b| b.parse::<i64>().ok()))
            else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        // An empty term matches nothing.
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    exprs.iter().all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, node.metadata.name.as_deref()))
}

/// nodeSelector and required node affinity of `spec` against `node`.
pub fn affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    selector_ok && required.is_none_or(|sel| sel.node_selector_terms.iter().any(|t| term_matches(t, node)))
}

/// `(should_run, should_continue_running)` for a daemon pod of `spec` (tolerations already
/// added) on `node`.
pub fn node_should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty() && n != node_name) {
        return (false, false);
    }
    if !affinity_matches(spec, node) {
        return (false, false);
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    if untolerated(taints, tolerations, &["NoSchedule", "NoExecute"]).is_none() {
        return (true, true);
    }
    (false, untolerated(taints, tolerations, &["NoExecute"]).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}))
            .expect("node")
    }

    fn spec(v: serde_json::Value) -> PodSpec {
        let mut s: PodSpec = serde_json::from_value(json!({"containers": []}).as_object().map_or(v.clone(), |base| {
            let mut m = base.clone();
            if let Some(o) = v.as_object() {
                m.extend(o.clone());
            }
            serde_json::Value::Object(m)
        }))
        .expect("spec");
        add_daemon_tolerations(&mut s);
        s
    }

    #[test]
    fn placement() {
        let plain = node("n1", json!({"disk": "ssd", "zone": "a", "cores": "8"}), json!([]));
        let cordoned =
            node("n2", json!({}), json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]));
        let not_ready = node("n3", json!({}), json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]));
        let dedicated = node("n4", json!({}), json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]));
        let evicting = node("n5", json!({}), json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]));
        let soft = node("n6", json!({}), json!([{"key": "x", "effect": "PreferNoSchedule"}]));
        // (pod spec, node, expected (should run, should continue))
        let cases = [
            (json!({}), &plain, (true, true)),
            (json!({"nodeSelector": {"disk": "ssd"}}), &plain, (true, true)),
            (json!({"nodeSelector": {"disk": "hdd"}}), &plain, (false, false)),
            (json!({"nodeName": "n9"}), &plain, (false, false)),
            (json!({}), &cordoned, (true, true)),
            (json!({}), &not_ready, (true, true)),
            (json!({}), &dedicated, (false, true)),
            (json!({}), &evicting, (false, false)),
            (
                json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db"}]}),
                &evicting,
                (true, true),
            ),
            (json!({"tolerations": [{"operator": "Exists"}]}), &dedicated, (true, true)),
            (json!({}), &soft, (true, true)),
            (
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                    {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}, {"key": "gpu", "operator": "DoesNotExist"}]},
                ]}}}}),
                &plain,
                (true, true),
            ),
            (
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
                ]}}}}),
                &plain,
                (false, false),
            ),
        ];
        for (s, n, want) in cases {
            assert_eq!(node_should_run(&spec(s.clone()), n), want, "{s} on {:?}", n.metadata.name);
        }
    }

    #[test]
    fn daemon_tolerations_are_added_once() {
        let mut s: PodSpec = serde_json::from_value(json!({"containers": [], "hostNetwork": true,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}))
        .expect("spec");
        add_daemon_tolerations(&mut s);
        add_daemon_tolerations(&mut s);
        let t = s.tolerations.unwrap_or_default();
        assert_eq!(t.len(), 7);
        assert!(t.iter().all(|t| t.toleration_seconds.is_none()));
    }
}
