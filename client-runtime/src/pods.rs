//! The one set of pod predicates every controller uses: active, terminal, ready, available
//! (upstream `controller.IsPodActive`, `podutil.IsPodTerminal`, `podutil.IsPodReady`,
//! `podutil.IsPodAvailable`).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;

/// Not terminal (Succeeded/Failed) and not being deleted: the pods a controller counts.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !is_terminal(pod)
}

/// Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// `status.phase`, empty when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Whether the pod is being deleted (has a deletionTimestamp).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some()
}

/// When a ready pod became ready (the `Ready` condition's lastTransitionTime), `None` inside
/// when the time is missing; `None` outside when the pod is not ready.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    ready_condition(pod)
}

fn ready_condition(pod: &Pod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let c = conditions.iter().find(|c| c.type_ == "Ready")?;
    (c.status == "True").then(|| c.last_transition_time.as_ref().map(|t| t.0))
}

/// When the pod becomes (or became) available: ready for `min_ready_seconds`. `None` when it is
/// not ready, or when `min_ready_seconds > 0` and the ready time is unknown (as upstream).
pub fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<Timestamp> {
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 {
        return Some(since.unwrap_or(Timestamp::MIN));
    }
    since?.checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds))).ok()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match available_at(pod, min_ready_seconds) {
        Some(at) => min_ready_seconds <= 0 || at < now,
        None => false,
    }
}

/// The highest restart count of the pod's containers.
pub fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str, ready: Option<&str>, deleting: bool) -> Pod {
        let mut v = serde_json::json!({"metadata": {"name": "p"}, "status": {"phase": phase}});
        if let Some(at) = ready {
            v["status"]["conditions"] =
                serde_json::json!([{"type": "Ready", "status": "True", "lastTransitionTime": at}]);
        }
        if deleting {
            v["metadata"]["deletionTimestamp"] = serde_json::json!("2024-01-01T00:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn activity_and_availability() {
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        assert!(is_active(&pod("Running", None, false)));
        assert!(!is_active(&pod("Running", None, true)));
        assert!(!is_active(&pod("Succeeded", None, false)));
        assert!(!is_active(&pod("Failed", None, false)));
        let p = pod("Running", Some("2024-01-01T00:00:30Z"), false);
        assert!(is_ready(&p));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 29, now));
        assert!(!is_available(&p, 30, now), "must be ready strictly longer than minReadySeconds");
        assert!(!is_available(&pod("Running", None, false), 0, now));
    }
}
