//! Data-driven tests of Job pod accounting.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;

fn job(spec: serde_json::Value) -> Job {
    serde_json::from_value(json!({"metadata": {"name": "j", "uid": "ju"}, "spec": spec})).expect("job")
}

fn pod(uid: &str, phase: &str, deleting: bool, tracked: bool) -> Arc<Pod> {
    let mut meta = json!({"name": uid, "uid": uid});
    if deleting {
        meta["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    }
    if tracked {
        meta["finalizers"] = json!([TRACKING_FINALIZER]);
    }
    Arc::new(serde_json::from_value(json!({"metadata": meta, "status": {"phase": phase}})).expect("pod"))
}

#[test]
fn outcomes() {
    let default = job(json!({"template": {}}));
    let failed_only = job(json!({"template": {}, "podReplacementPolicy": "Failed"}));
    // (phase, deleting, job, expected)
    let cases = [
        ("Succeeded", false, &default, Some(Outcome::Succeeded)),
        ("Failed", false, &default, Some(Outcome::Failed)),
        ("Running", false, &default, None),
        ("Pending", false, &default, None),
        ("Running", true, &default, Some(Outcome::Failed)),
        ("Succeeded", true, &default, Some(Outcome::Succeeded)),
        ("Running", true, &failed_only, None),
        ("Failed", true, &failed_only, Some(Outcome::Failed)),
    ];
    for (phase, deleting, j, want) in cases {
        assert_eq!(outcome(j, &pod("p", phase, deleting, true)), want, "{phase} deleting={deleting}");
    }
}

#[test]
fn newly_finished_skips_recorded_untracked_and_awaited() {
    let j = job(json!({"template": {}}));
    let pods = vec![
        pod("a", "Succeeded", false, true),
        pod("b", "Failed", false, true),
        pod("c", "Failed", false, false),   // finalizer already removed: counted before
        pod("d", "Succeeded", false, true), // in uncountedTerminatedPods
        pod("e", "Failed", false, true),    // we removed its finalizer; cache is stale
        pod("f", "Running", false, true),
    ];
    let known: HashSet<String> = ["d".to_string()].into();
    let got: Vec<(String, Outcome)> = newly_finished(&j, &pods, &known, |u| u == "e")
        .into_iter()
        .map(|(p, o)| (p.metadata.uid.clone().unwrap_or_default(), o))
        .collect();
    assert_eq!(got, vec![("a".into(), Outcome::Succeeded), ("b".into(), Outcome::Failed)]);
}

#[test]
fn wanted_active_pods() {
    // (completions, parallelism, succeeded, active, want)
    let cases = [
        (Some(3), 2, 0, 0, 2),
        (Some(3), 2, 2, 1, 1),
        (Some(3), 2, 3, 0, 0),
        (Some(3), 5, 1, 0, 2),
        (None, 2, 0, 0, 2),
        (None, 2, 1, 1, 1), // work queue: after a success, no new pods
        (None, 2, 1, 0, 0),
        (Some(1), 0, 0, 0, 0),
    ];
    for (completions, parallelism, succeeded, active, want) in cases {
        let j = job(json!({"template": {}, "completions": completions, "parallelism": parallelism}));
        assert_eq!(want_active(&j, succeeded, active), want, "{completions:?}/{parallelism} s={succeeded} a={active}");
    }
}

#[test]
fn completion() {
    let three = job(json!({"template": {}, "completions": 3}));
    let queue = job(json!({"template": {}}));
    assert!(!complete(&three, 2, 1));
    assert!(complete(&three, 3, 0));
    assert!(!complete(&queue, 1, 1));
    assert!(complete(&queue, 1, 0));
    assert!(!complete(&queue, 0, 0));
}

#[test]
fn backoff_limit() {
    let never = job(json!({"template": {"spec": {"restartPolicy": "Never"}}, "backoffLimit": 2}));
    assert!(!past_backoff_limit(&never, 2, &[]));
    assert!(past_backoff_limit(&never, 3, &[]));
    let default = job(json!({"template": {}}));
    assert!(!past_backoff_limit(&default, 6, &[]));
    assert!(past_backoff_limit(&default, 7, &[]));
    // OnFailure: container restarts of running pods count.
    let on_failure = job(json!({"template": {"spec": {"restartPolicy": "OnFailure"}}, "backoffLimit": 2}));
    let restarted: Arc<Pod> = Arc::new(
        serde_json::from_value(json!({"metadata": {"name": "r"}, "status": {"phase": "Running",
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 2}]}}))
        .expect("pod"),
    );
    assert!(!past_backoff_limit(&on_failure, 0, &[]));
    assert!(past_backoff_limit(&on_failure, 0, std::slice::from_ref(&restarted)));
    let zero = job(json!({"template": {"spec": {"restartPolicy": "OnFailure"}}, "backoffLimit": 0}));
    assert!(past_backoff_limit(&zero, 0, &[restarted]));
}

#[test]
fn failure_backoff_doubles_to_a_cap() {
    use std::time::Duration;
    let secs = |n| failure_backoff(n).as_secs();
    assert_eq!(failure_backoff(0), Duration::ZERO);
    assert_eq!([secs(1), secs(2), secs(3), secs(4)], [10, 20, 40, 80]);
    assert_eq!(secs(7), 600);
    assert_eq!(secs(100), 600);
}
