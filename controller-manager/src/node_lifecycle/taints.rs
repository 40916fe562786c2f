//! Which taints the node lifecycle controller wants on a Node, derived from its conditions
//! (upstream `doNoScheduleTaintingPass` and `doNoExecuteTaintingPass`), the patch that writes
//! them, and toleration matching.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub const NO_EXECUTE: &str = "NoExecute";
const NO_SCHEDULE: &str = "NoSchedule";

/// Every (key, effect) this controller manages; taints outside this set are left alone.
const MANAGED: [(&str, &str); 9] = [
    (NOT_READY, NO_EXECUTE),
    (UNREACHABLE, NO_EXECUTE),
    (NOT_READY, NO_SCHEDULE),
    (UNREACHABLE, NO_SCHEDULE),
    (MEMORY_PRESSURE, NO_SCHEDULE),
    (DISK_PRESSURE, NO_SCHEDULE),
    (PID_PRESSURE, NO_SCHEDULE),
    (NETWORK_UNAVAILABLE, NO_SCHEDULE),
    (UNSCHEDULABLE, NO_SCHEDULE),
];

/// The status of the condition `type_` ("True", "False", "Unknown"), if the node has it.
pub fn condition_status<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a str> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.status.as_str())
}

/// The managed taints the node should carry, as (key, effect).
pub fn wanted(node: &Node) -> Vec<(&'static str, &'static str)> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let mut out = Vec::new();
    match condition_status(conditions, "Ready") {
        Some("False") => out.extend([(NOT_READY, NO_EXECUTE), (NOT_READY, NO_SCHEDULE)]),
        Some("Unknown") => out.extend([(UNREACHABLE, NO_EXECUTE), (UNREACHABLE, NO_SCHEDULE)]),
        _ => {}
    }
    for (cond, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if condition_status(conditions, cond) == Some("True") {
            out.push((key, NO_SCHEDULE));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push((UNSCHEDULABLE, NO_SCHEDULE));
    }
    out
}

/// The node's taints with the managed ones brought in line with `wanted`: unwanted managed taints
/// removed, missing ones added with `timeAdded = now`, everything else kept as it is. `None` when
/// nothing changes.
pub fn reconcile_taints(current: &[Taint], wanted: &[(&str, &str)], now: jiff::Timestamp) -> Option<Vec<Taint>> {
    let is_managed = |t: &Taint| MANAGED.iter().any(|(k, e)| t.key == *k && t.effect == *e);
    let is_wanted = |t: &Taint| wanted.iter().any(|(k, e)| t.key == *k && t.effect == *e);
    let mut out: Vec<Taint> = current.iter().filter(|t| !is_managed(t) || is_wanted(t)).cloned().collect();
    for (key, effect) in wanted {
        if !out.iter().any(|t| t.key == *key && t.effect == *effect) {
            out.push(Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                value: None,
                time_added: Some(Time(now)),
            });
        }
    }
    (out != current).then_some(out)
}

/// The RFC 6902 patch that changes the node's taints from what `node` (as read) has to `new`, and
/// touches nothing else. Upstream's `PatchNodeTaints` sends a strategic merge patch of
/// `spec.taints` carrying the read `metadata.resourceVersion` as its precondition; but the
/// resourceVersion is bumped by every write of the Node, status heartbeats included, so that
/// precondition fails whenever a heartbeat lands between read and write (upstream then re-reads
/// and retries). Here the precondition is a `test` of exactly what the write replaces: it fails
/// only when the taints changed since the read (a concurrent taint writer), never because the
/// status did.
///
/// A node without `spec.taints` has nothing to test; the `test` is then of the whole `spec`
/// (which status writes do not touch either). Only a node with no spec at all falls back to
/// testing `metadata.resourceVersion` (the caller gives such a node an empty spec first).
pub fn taints_patch(node: &Node, new: &[Taint]) -> serde_json::Value {
    use serde_json::json;
    let spec = node.spec.as_ref();
    let write = |op: &str| {
        if new.is_empty() {
            json!({"op": "remove", "path": "/spec/taints"})
        } else {
            json!({"op": op, "path": "/spec/taints", "value": new})
        }
    };
    match (spec, spec.and_then(|s| s.taints.as_ref())) {
        (_, Some(current)) => json!([{"op": "test", "path": "/spec/taints", "value": current}, write("replace")]),
        // Nothing to remove where there are no taints.
        _ if new.is_empty() => json!([]),
        (Some(spec), None) => json!([{"op": "test", "path": "/spec", "value": spec}, write("add")]),
        (None, None) => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": node.metadata.resource_version},
            {"op": "add", "path": "/spec", "value": {"taints": new}},
        ]),
    }
}

/// Whether `toleration` tolerates `taint` (upstream `Toleration.ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        "Exists" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};

    fn node(conditions: &[(&str, &str)], unschedulable: bool) -> Node {
        Node {
            spec: Some(NodeSpec { unschedulable: Some(unschedulable), ..Default::default() }),
            status: Some(NodeStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| NodeCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint { key: key.into(), effect: effect.into(), ..Default::default() }
    }

    #[test]
    fn wanted_taints_follow_conditions() {
        let cases: Vec<(Node, Vec<(&str, &str)>)> = vec![
            (node(&[("Ready", "True")], false), vec![]),
            (node(&[("Ready", "False")], false), vec![(NOT_READY, NO_EXECUTE), (NOT_READY, NO_SCHEDULE)]),
            (node(&[("Ready", "Unknown")], false), vec![(UNREACHABLE, NO_EXECUTE), (UNREACHABLE, NO_SCHEDULE)]),
            (
                node(&[("Ready", "True"), ("DiskPressure", "True"), ("MemoryPressure", "False")], true),
                vec![(DISK_PRESSURE, NO_SCHEDULE), (UNSCHEDULABLE, NO_SCHEDULE)],
            ),
            (node(&[], false), vec![]),
        ];
        for (n, want) in cases {
            assert_eq!(wanted(&n), want);
        }
    }

    #[test]
    fn taints_are_swapped_and_foreign_ones_kept() {
        let now = jiff::Timestamp::now();
        let current =
            vec![taint("dedicated", NO_SCHEDULE), taint(NOT_READY, NO_EXECUTE), taint(NOT_READY, NO_SCHEDULE)];
        let out = reconcile_taints(&current, &[(UNREACHABLE, NO_EXECUTE), (UNREACHABLE, NO_SCHEDULE)], now).unwrap();
        let keys: Vec<_> = out.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
        assert_eq!(keys, vec![("dedicated", NO_SCHEDULE), (UNREACHABLE, NO_EXECUTE), (UNREACHABLE, NO_SCHEDULE)]);
        assert_eq!(out[1].time_added, Some(Time(now)));
        // Already in line: no update.
        assert_eq!(reconcile_taints(&out, &[(UNREACHABLE, NO_EXECUTE), (UNREACHABLE, NO_SCHEDULE)], now), None);
        // Ready again: only the foreign taint stays.
        let healed = reconcile_taints(&out, &[], now).unwrap();
        assert_eq!(healed, vec![taint("dedicated", NO_SCHEDULE)]);
        // A user's NoExecute taint with a managed key but another effect is not ours.
        assert_eq!(reconcile_taints(&[taint(NOT_READY, "PreferNoSchedule")], &[], now), None);
    }

    #[test]
    fn taint_patch_tests_what_it_replaces() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        use serde_json::json;
        let with = |taints: Option<Vec<Taint>>| Node {
            metadata: ObjectMeta { resource_version: Some("7".into()), ..Default::default() },
            spec: Some(NodeSpec { taints, unschedulable: Some(true), ..Default::default() }),
            ..Default::default()
        };
        let old = vec![taint("dedicated", NO_SCHEDULE)];
        let new = vec![taint("dedicated", NO_SCHEDULE), taint(UNREACHABLE, NO_EXECUTE)];
        let t = |k: &str, e: &str| json!({"key": k, "effect": e});
        assert_eq!(
            taints_patch(&with(Some(old.clone())), &new),
            json!([
                {"op": "test", "path": "/spec/taints", "value": [t("dedicated", NO_SCHEDULE)]},
                {"op": "replace", "path": "/spec/taints",
                 "value": [t("dedicated", NO_SCHEDULE), t(UNREACHABLE, NO_EXECUTE)]},
            ])
        );
        assert_eq!(
            taints_patch(&with(Some(old.clone())), &[]),
            json!([
                {"op": "test", "path": "/spec/taints", "value": [t("dedicated", NO_SCHEDULE)]},
                {"op": "remove", "path": "/spec/taints"},
            ])
        );
        assert_eq!(
            taints_patch(&with(None), &old),
            json!([
                {"op": "test", "path": "/spec", "value": {"unschedulable": true}},
                {"op": "add", "path": "/spec/taints", "value": [t("dedicated", NO_SCHEDULE)]},
            ])
        );
        assert_eq!(taints_patch(&with(None), &[]), json!([]));
        let bare = Node { spec: None, ..with(None) };
        assert_eq!(
            taints_patch(&bare, &old),
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                {"op": "add", "path": "/spec", "value": {"taints": [t("dedicated", NO_SCHEDULE)]}},
            ])
        );
    }

    #[test]
    fn toleration_matching() {
        let tol = |key: Option<&str>, op: Option<&str>, value: Option<&str>, effect: Option<&str>| Toleration {
            key: key.map(String::from),
            operator: op.map(String::from),
            value: value.map(String::from),
            effect: effect.map(String::from),
            toleration_seconds: None,
        };
        let t = Taint { key: UNREACHABLE.into(), effect: NO_EXECUTE.into(), value: None, time_added: None };
        let v = Taint { value: Some("x".into()), ..t.clone() };
        let cases = [
            (tol(Some(UNREACHABLE), Some("Exists"), None, Some(NO_EXECUTE)), &t, true),
            (tol(Some(UNREACHABLE), Some("Exists"), None, None), &t, true),
            (tol(None, Some("Exists"), None, None), &t, true),
            (tol(Some(NOT_READY), Some("Exists"), None, None), &t, false),
            (tol(Some(UNREACHABLE), Some("Exists"), None, Some(NO_SCHEDULE)), &t, false),
            (tol(Some(UNREACHABLE), None, None, None), &t, true),
            (tol(Some(UNREACHABLE), Some("Equal"), Some("x"), None), &t, false),
            (tol(Some(UNREACHABLE), Some("Equal"), Some("x"), None), &v, true),
            (tol(Some(UNREACHABLE), Some("Lt"), None, None), &t, false),
        ];
        for (i, (toleration, taint, want)) in cases.iter().enumerate() {
            assert_eq!(tolerates(toleration, taint), *want, "case {i}");
        }
    }
}
