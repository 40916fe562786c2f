//! Data-driven tests of the manage plan and the rolling-update step.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::super::manage::{self, NodeFit};
use super::*;

/// A pod `name` on `node`: `v` is its template hash, `ready` its readiness, `phase` its phase.
fn pod(name: &str, node: &str, v: &str, ready: bool, phase: &str, created: &str) -> Arc<Pod> {
    let conds = if ready { json!([{"type": "Ready", "status": "True"}]) } else { json!([]) };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"controller-revision-hash": v}, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase, "conditions": conds}}))
        .expect("pod"),
    )
}

fn fit(name: &str, run: bool) -> NodeFit {
    NodeFit { name: name.into(), should_run: run, should_continue: run }
}

fn group(pods: Vec<Arc<Pod>>) -> HashMap<String, Vec<Arc<Pod>>> {
    let mut m: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for p in pods {
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        m.entry(node).or_default().push(p);
    }
    m
}

const T1: &str = "2024-01-01T00:00:00Z";
const T2: &str = "2024-01-01T00:01:00Z";

#[test]
fn limits_round_up_and_never_stall() {
    let pct = |s: &str| IntOrString::String(s.into());
    // (maxSurge, maxUnavailable, desired, expected)
    let cases = [
        (None, None, 10, (0, 1)),
        (None, Some(pct("25%")), 10, (0, 3)),
        (Some(pct("10%")), Some(IntOrString::Int(0)), 15, (2, 0)),
        (Some(IntOrString::Int(0)), Some(IntOrString::Int(0)), 3, (0, 1)),
        (None, Some(IntOrString::Int(2)), 0, (0, 2)),
    ];
    for (s, u, d, want) in cases {
        assert_eq!(limits(s.as_ref(), u.as_ref(), d), want, "{s:?} {u:?} {d}");
    }
}

#[test]
fn manage_plan() {
    let now = jiff::Timestamp::now();
    let nodes = [fit("a", true), fit("b", true), fit("c", false), fit("d", true)];
    let pods = vec![
        pod("a1", "a", "v1", true, "Running", T1),
        pod("a2", "a", "v1", true, "Running", T2), // duplicate: the younger goes
        pod("c1", "c", "v1", true, "Running", T1), // node no longer eligible
        pod("d1", "d", "v1", false, "Failed", T1), // replaced
        pod("x1", "gone", "v1", true, "Running", T1), // scheduled on a vanished node: left to pod GC
    ];
    let by_node = group(pods);
    let plan = manage::plan(&manage::Inputs {
        nodes: &nodes,
        by_node: &by_node,
        hash: "v1",
        surge: false,
        min_ready_seconds: 0,
        now,
    });
    assert_eq!(plan.create_on, vec!["b".to_string()]);
    let mut delete = plan.delete.clone();
    delete.sort();
    assert_eq!(delete, vec!["a2".to_string(), "c1".to_string()]);
    assert_eq!(plan.finished, vec![("d".to_string(), "d1".to_string())]);
}

#[test]
fn surge_keeps_old_until_new_is_available() {
    let now = jiff::Timestamp::now();
    let nodes = [fit("a", true), fit("b", true)];
    let by_node = group(vec![
        pod("a-old", "a", "v1", true, "Running", T1),
        pod("a-new", "a", "v2", false, "Running", T2), // not ready: keep both
        pod("b-old", "b", "v1", true, "Running", T1),
        pod("b-new", "b", "v2", true, "Running", T2), // available: old goes
    ]);
    let plan = manage::plan(&manage::Inputs {
        nodes: &nodes,
        by_node: &by_node,
        hash: "v2",
        surge: true,
        min_ready_seconds: 0,
        now,
    });
    assert_eq!(plan.delete, vec!["b-old".to_string()]);
}

#[test]
fn rolling_step_without_surge() {
    let now = jiff::Timestamp::now();
    let nodes = [fit("a", true), fit("b", true), fit("c", true), fit("d", true)];
    let updated =
        |p: &Pod| p.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash")).is_some_and(|h| h == "v2");
    // (pods, maxUnavailable, old pods deleted)
    type Case = (Vec<Arc<Pod>>, i32, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        // All old and available: delete up to maxUnavailable.
        (
            vec![
                pod("a", "a", "v1", true, "Running", T1),
                pod("b", "b", "v1", true, "Running", T1),
                pod("c", "c", "v1", true, "Running", T1),
                pod("d", "d", "v1", true, "Running", T1),
            ],
            1,
            vec!["a"],
        ),
        (
            vec![
                pod("a", "a", "v1", true, "Running", T1),
                pod("b", "b", "v1", true, "Running", T1),
                pod("c", "c", "v1", true, "Running", T1),
                pod("d", "d", "v1", true, "Running", T1),
            ],
            2,
            vec!["a", "b"],
        ),
        // A new pod not yet available uses the budget.
        (
            vec![
                pod("a", "a", "v2", false, "Running", T1),
                pod("b", "b", "v1", true, "Running", T1),
                pod("c", "c", "v1", true, "Running", T1),
                pod("d", "d", "v1", true, "Running", T1),
            ],
            1,
            vec![],
        ),
        // An unavailable old pod is always replaced.
        (
            vec![
                pod("a", "a", "v2", false, "Running", T1),
                pod("b", "b", "v1", false, "Running", T1),
                pod("c", "c", "v1", true, "Running", T1),
                pod("d", "d", "v1", true, "Running", T1),
            ],
            1,
            vec!["b"],
        ),
    ];
    for (pods, max_unavailable, want) in cases {
        let by_node = group(pods);
        let (delete, create) = step(&Inputs {
            nodes: &nodes,
            by_node: &by_node,
            updated: &updated,
            max_surge: 0,
            max_unavailable,
            desired: 4,
            min_ready_seconds: 0,
            now,
        });
        assert_eq!(delete, want, "maxUnavailable {max_unavailable}");
        assert!(create.is_empty());
    }
}

#[test]
fn rolling_step_with_surge() {
    let now = jiff::Timestamp::now();
    let nodes = [fit("a", true), fit("b", true), fit("c", true)];
    let updated =
        |p: &Pod| p.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash")).is_some_and(|h| h == "v2");
    let by_node = group(vec![
        pod("a-old", "a", "v1", true, "Running", T1),
        pod("a-new", "a", "v2", true, "Running", T2), // new available: old goes
        pod("b-old", "b", "v1", true, "Running", T1), // surge candidate
        pod("c-old", "c", "v1", false, "Running", T1), // unavailable: replacement allowed at once
    ]);
    let (delete, create) = step(&Inputs {
        nodes: &nodes,
        by_node: &by_node,
        updated: &updated,
        max_surge: 1,
        max_unavailable: 0,
        desired: 3,
        min_ready_seconds: 0,
        now,
    });
    assert_eq!(delete, vec!["a-old".to_string()]);
    assert_eq!(create, vec!["c".to_string(), "b".to_string()]);
}
