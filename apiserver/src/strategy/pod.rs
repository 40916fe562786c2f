//! Pods: the status a pod starts with and the grace period of its deletion.

use serde_json::{json, Value};

/// A new pod is Pending, with the QoS class of its containers (upstream's PrepareForCreate).
pub fn initial_status(pod: &Value) -> Value {
    json!({"phase": "Pending", "qosClass": qos_class(pod.get("spec"))})
}

/// The pod's QoS class from its containers' requests and limits (upstream's GetPodQOS).
fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.and_then(|s| s.get(*k)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        for r in ["cpu", "memory"] {
            let req = requests.and_then(|m| m.get(r));
            let lim = limits.and_then(|m| m.get(r));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(a), Some(b)) if a != b => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The grace period a pod gets: the request's, else the pod's own, else 30 s; 0 for a pod
/// never bound to a node or already finished (nothing to stop), as upstream's CheckGracefulDelete.
pub fn grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let bound = pod.pointer("/spec/nodeName").and_then(Value::as_str).map(|s| !s.is_empty()).unwrap_or(false);
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    let g =
        requested.or_else(|| pod.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64)).unwrap_or(30);
    g.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(Some(&json!({"containers":[{"name":"a"}]}))), "BestEffort");
        let g = json!({"containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]});
        assert_eq!(qos_class(Some(&g)), "Guaranteed");
        let b = json!({"containers":[{"name":"a","resources":{"requests":{"cpu":"1"}}}]});
        assert_eq!(qos_class(Some(&b)), "Burstable");
    }

    #[test]
    fn pods_get_grace_only_on_a_node() {
        assert_eq!(grace_period(&json!({"spec":{}}), Some(30)), 0);
        let bound = json!({"spec":{"nodeName":"n","terminationGracePeriodSeconds":10},"status":{"phase":"Running"}});
        assert_eq!(grace_period(&bound, None), 10);
        assert_eq!(grace_period(&bound, Some(0)), 0);
        let done = json!({"spec":{"nodeName":"n"},"status":{"phase":"Succeeded"}});
        assert_eq!(grace_period(&done, Some(5)), 0);
    }
}
