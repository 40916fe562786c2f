//! Which pods a ReplicaSet deletes first when it has too many (upstream `getPodsToDelete` and
//! `controller.ActivePodsWithRanks`, with PodDeletionCost and LogarithmicScaleDown on, their
//! defaults): unassigned before assigned; Pending before Unknown before Running; not ready before
//! ready; lower `controller.kubernetes.io/pod-deletion-cost` first; pods sharing a node with more
//! related pods first; ready for less time first; more restarts first; newer first.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use client_runtime::pods;

const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The `n` pods of `active` to delete first. `related` are the active pods of every ReplicaSet
/// with the same owner (they decide how crowded a node is).
pub fn pods_to_delete(active: &[Arc<Pod>], related: &[Arc<Pod>], n: usize, now: Timestamp) -> Vec<Arc<Pod>> {
    if n >= active.len() {
        return active.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| pods::is_active(p)) {
        *on_node.entry(node(p)).or_default() += 1;
    }
    let mut ranked: Vec<(usize, &Arc<Pod>)> =
        active.iter().map(|p| (on_node.get(node(p)).copied().unwrap_or(0), p)).collect();
    ranked.sort_by(|a, b| compare((a.0, a.1), (b.0, b.1), now));
    ranked.into_iter().take(n).map(|(_, p)| p.clone()).collect()
}

fn node(p: &Pod) -> &str {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

fn phase_ordinal(p: &Pod) -> u8 {
    match pods::phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(p: &Pod) -> i32 {
    p.metadata.annotations.as_ref().and_then(|a| a.get(DELETION_COST)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn uid(p: &Pod) -> &str {
    p.metadata.uid.as_deref().unwrap_or("")
}

/// `Less` as a total order: `Less` means "delete `a` before `b`".
fn compare(a: (usize, &Pod), b: (usize, &Pod), now: Timestamp) -> Ordering {
    if less(a, b, now) {
        Ordering::Less
    } else if less(b, a, now) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn less((rank_i, i): (usize, &Pod), (rank_j, j): (usize, &Pod), now: Timestamp) -> bool {
    let (ni, nj) = (node(i), node(j));
    if ni != nj && (ni.is_empty() || nj.is_empty()) {
        return ni.is_empty();
    }
    if phase_ordinal(i) != phase_ordinal(j) {
        return phase_ordinal(i) < phase_ordinal(j);
    }
    let (ri, rj) = (pods::ready_since(i), pods::ready_since(j));
    if ri.is_some() != rj.is_some() {
        return ri.is_none();
    }
    if deletion_cost(i) != deletion_cost(j) {
        return deletion_cost(i) < deletion_cost(j);
    }
    if rank_i != rank_j {
        return rank_i > rank_j;
    }
    if let (Some(ti), Some(tj)) = (ri, rj) {
        if ti != tj {
            return newer_first(ti, tj, now, uid(i), uid(j));
        }
    }
    if pods::max_restarts(i) != pods::max_restarts(j) {
        return pods::max_restarts(i) > pods::max_restarts(j);
    }
    let (ci, cj) =
        (i.metadata.creation_timestamp.as_ref().map(|t| t.0), j.metadata.creation_timestamp.as_ref().map(|t| t.0));
    if ci != cj {
        return newer_first(ci, cj, now, uid(i), uid(j));
    }
    false
}

/// Empty < newer < older, compared on a log2 scale of age so that pods of similar age are
/// ordered pseudo-randomly (by UID) rather than strictly by time.
fn newer_first(ti: Option<Timestamp>, tj: Option<Timestamp>, now: Timestamp, uid_i: &str, uid_j: &str) -> bool {
    match (ti, tj) {
        (Some(a), Some(b)) => match log_rank(a, now) - log_rank(b, now) {
            0 => uid_i < uid_j,
            d => d < 0,
        },
        (a, _) => a.is_none(),
    }
}

fn log_rank(t: Timestamp, now: Timestamp) -> i64 {
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    if nanos > 0 {
        // Truncation toward zero as upstream's int64(math.Log2(...)).
        (nanos as f64).log2() as i64
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct P {
        name: &'static str,
        node: &'static str,
        phase: &'static str,
        ready: Option<&'static str>,
        restarts: i32,
        created: &'static str,
        cost: Option<&'static str>,
    }

    const BASE: P = P {
        name: "",
        node: "n1",
        phase: "Running",
        ready: None,
        restarts: 0,
        created: "2024-01-01T00:00:00Z",
        cost: None,
    };

    fn pod(p: P) -> Arc<Pod> {
        let mut v = serde_json::json!({
            "metadata": {"name": p.name, "uid": p.name, "creationTimestamp": p.created},
            "spec": {"nodeName": p.node, "containers": []},
            "status": {"phase": p.phase, "containerStatuses": [{"name": "c", "restartCount": p.restarts, "image": "i",
                "imageID": "", "ready": false}]},
        });
        if let Some(at) = p.ready {
            v["status"]["conditions"] =
                serde_json::json!([{"type": "Ready", "status": "True", "lastTransitionTime": at}]);
        }
        if let Some(c) = p.cost {
            v["metadata"]["annotations"] = serde_json::json!({DELETION_COST: c});
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn order(pods: Vec<Arc<Pod>>, related: &[Arc<Pod>]) -> Vec<String> {
        let now: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        let mut shuffled = pods.clone();
        shuffled.reverse();
        let n = pods.len() - 1;
        pods_to_delete(&shuffled, related, n, now).iter().map(|p| p.metadata.name.clone().unwrap()).collect()
    }

    /// Each case lists pods from "delete first" to "delete last"; all but the last are chosen.
    #[test]
    fn ranking() {
        let t_old = "2024-01-01T00:00:00Z";
        let t_new = "2024-05-31T23:59:00Z";
        let cases: Vec<(&str, Vec<Arc<Pod>>)> = vec![
            ("unassigned before assigned", vec![pod(P { name: "a", node: "", ..BASE }), pod(P { name: "b", ..BASE })]),
            (
                "pending < unknown < running",
                vec![
                    pod(P { name: "a", phase: "Pending", ..BASE }),
                    pod(P { name: "b", phase: "Unknown", ..BASE }),
                    pod(P { name: "c", ..BASE }),
                ],
            ),
            (
                "not ready before ready",
                vec![pod(P { name: "a", ..BASE }), pod(P { name: "b", ready: Some(t_old), ..BASE })],
            ),
            (
                "lower deletion cost first",
                vec![pod(P { name: "a", cost: Some("-5"), ..BASE }), pod(P { name: "b", cost: Some("10"), ..BASE })],
            ),
            (
                "ready for less time first",
                vec![
                    pod(P { name: "a", ready: Some(t_new), ..BASE }),
                    pod(P { name: "b", ready: Some(t_old), ..BASE }),
                ],
            ),
            (
                "more restarts first",
                vec![pod(P { name: "a", restarts: 5, ..BASE }), pod(P { name: "b", restarts: 1, ..BASE })],
            ),
            (
                "newer first",
                vec![pod(P { name: "a", created: t_new, ..BASE }), pod(P { name: "b", created: t_old, ..BASE })],
            ),
        ];
        for (what, pods) in cases {
            let want: Vec<String> =
                pods.iter().take(pods.len() - 1).map(|p| p.metadata.name.clone().unwrap()).collect();
            assert_eq!(order(pods, &[]), want, "{what}");
        }
    }

    #[test]
    fn crowded_nodes_first() {
        let a = pod(P { name: "a", node: "busy", ..BASE });
        let b = pod(P { name: "b", node: "quiet", ..BASE });
        let sibling = pod(P { name: "s", node: "busy", ..BASE });
        let related = vec![a.clone(), b.clone(), sibling];
        assert_eq!(order(vec![a, b], &related), vec!["a"]);
    }

    #[test]
    fn all_when_asked_for_more() {
        let pods = vec![pod(P { name: "a", ..BASE })];
        assert_eq!(pods_to_delete(&pods, &[], 3, Timestamp::now()).len(), 1);
    }
}
