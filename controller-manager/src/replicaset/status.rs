//! ReplicaSet status from its active pods (upstream `calculateStatus`): replicas,
//! fullyLabeledReplicas, readyReplicas, availableReplicas, and the ReplicaFailure condition
//! while creating or deleting pods fails.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use client_runtime::pods;

/// The status for `active` pods; `manage_error` is the message of a failed create/delete.
pub fn calculate(
    rs: &ReplicaSet,
    active: &[Arc<Pod>],
    manage_error: Option<String>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels =
        spec.and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.as_ref());
    let mut status = rs.status.clone().unwrap_or_default();
    let (mut labeled, mut ready, mut available) = (0, 0, 0);
    for pod in active {
        let labels = pod.metadata.labels.as_ref();
        if template_labels.is_none_or(|t| t.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))) {
            labeled += 1;
        }
        if pods::is_ready(pod) {
            ready += 1;
            if pods::is_available(pod, min_ready, now) {
                available += 1;
            }
        }
    }
    let has_failure = conditions(&status).iter().any(|c| c.type_ == "ReplicaFailure");
    match manage_error {
        Some(message) if !has_failure => {
            let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
            let reason = match (active.len() as i64).cmp(&i64::from(desired)) {
                std::cmp::Ordering::Less => "FailedCreate",
                std::cmp::Ordering::Greater => "FailedDelete",
                std::cmp::Ordering::Equal => "",
            };
            let cond = ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(message),
                last_transition_time: Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now))),
            };
            let mut conds: Vec<_> = conditions(&status).into_iter().filter(|c| c.type_ != "ReplicaFailure").collect();
            conds.push(cond);
            status.conditions = Some(conds);
        }
        None if has_failure => {
            let conds: Vec<_> = conditions(&status).into_iter().filter(|c| c.type_ != "ReplicaFailure").collect();
            status.conditions = (!conds.is_empty()).then_some(conds);
        }
        _ => {}
    }
    status.replicas = active.len() as i32;
    status.fully_labeled_replicas = Some(labeled);
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status
}

fn conditions(status: &ReplicaSetStatus) -> Vec<ReplicaSetCondition> {
    status.conditions.clone().unwrap_or_default()
}

/// Whether two statuses say the same (unset counts equal zero, as they do on the wire).
pub fn same(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    let n = |v: Option<i32>| v.unwrap_or(0);
    a.replicas == b.replicas
        && n(a.fully_labeled_replicas) == n(b.fully_labeled_replicas)
        && n(a.ready_replicas) == n(b.ready_replicas)
        && n(a.available_replicas) == n(b.available_replicas)
        && a.observed_generation.unwrap_or(0) == b.observed_generation.unwrap_or(0)
        && conditions(a) == conditions(b)
}

/// When the next ready-but-not-yet-available pod becomes available (for a requeue).
pub fn next_availability(rs: &ReplicaSet, active: &[Arc<Pod>], now: Timestamp) -> Option<Timestamp> {
    let min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    if min_ready <= 0 {
        return None;
    }
    active.iter().filter_map(|p| pods::available_at(p, min_ready)).filter(|at| *at >= now).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_failure_condition() {
        let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "rs"},
            "spec": {"replicas": 3, "minReadySeconds": 10, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b", "c": "d"}}}},
        }))
        .unwrap();
        let pod = |labels: serde_json::Value, ready_at: Option<&str>| {
            let mut v =
                serde_json::json!({"metadata": {"name": "p", "labels": labels}, "status": {"phase": "Running"}});
            if let Some(at) = ready_at {
                v["status"]["conditions"] =
                    serde_json::json!([{"type": "Ready", "status": "True", "lastTransitionTime": at}]);
            }
            Arc::new(serde_json::from_value::<Pod>(v).unwrap())
        };
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        let active = vec![
            pod(serde_json::json!({"a": "b", "c": "d"}), Some("2024-01-01T00:00:00Z")),
            pod(serde_json::json!({"a": "b"}), Some("2024-01-01T00:00:55Z")),
        ];
        let s = calculate(&rs, &active, Some("quota exceeded".into()), now);
        assert_eq!(
            (s.replicas, s.fully_labeled_replicas, s.ready_replicas, s.available_replicas),
            (2, Some(1), Some(2), Some(1))
        );
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!((c.type_.as_str(), c.reason.as_deref()), ("ReplicaFailure", Some("FailedCreate")));
        assert_eq!(next_availability(&rs, &active, now), Some("2024-01-01T00:01:05Z".parse().unwrap()));
        let rs2 = ReplicaSet { status: Some(s), ..rs };
        assert!(calculate(&rs2, &active, None, now).conditions.is_none(), "the condition goes when creates succeed");
    }
}
