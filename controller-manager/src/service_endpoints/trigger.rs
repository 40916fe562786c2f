//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation: when the change that
//! this write reflects happened (kube-proxy measures programming latency from it).
//!
//! Upstream remembers the pod and Service states it last saw; this derives it from the objects
//! instead: the newest dated change among the Service and its pods (creation, readiness
//! transition, deletion request). A change that carries no date of its own — a pod deleted or
//! relabelled — is dated when the controller sees it.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};

pub const ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The value for the annotation, given the one already written (`previous`).
pub fn last_change(svc: &Service, pods: &[std::sync::Arc<Pod>], previous: Option<&str>, now: Timestamp) -> String {
    let dated = pods
        .iter()
        .flat_map(|p| pod_change_times(p))
        .chain(svc.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .max();
    let previous = previous.and_then(|p| p.parse::<Timestamp>().ok());
    let at = match (dated, previous) {
        (Some(d), Some(p)) if d <= p => now,
        (Some(d), _) => d,
        (None, _) => now,
    };
    format_time(at)
}

fn pod_change_times(pod: &Pod) -> impl Iterator<Item = Timestamp> + '_ {
    let ready = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten();
    let ready = ready.filter(|c| c.type_ == "Ready").filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0));
    let meta = &pod.metadata;
    let created = meta.creation_timestamp.as_ref().map(|t| t.0);
    let deleted = meta.deletion_timestamp.as_ref().map(|t| t.0);
    ready.chain(created).chain(deleted)
}

/// RFC 3339 in UTC, as upstream writes it.
fn format_time(t: Timestamp) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn newest_dated_change_or_now() {
        let svc: Service =
            serde_json::from_value(json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}})).expect("svc");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"creationTimestamp": "2024-01-01T00:01:00Z"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:02:00Z"}]}
        }))
        .expect("pod");
        let now: Timestamp = "2024-01-01T01:00:00Z".parse().expect("now");
        let pods = [Arc::new(pod)];
        assert_eq!(last_change(&svc, &pods, None, now), "2024-01-01T00:02:00Z");
        // Nothing newer than what was written: the change was undated (a pod went away).
        assert_eq!(last_change(&svc, &pods, Some("2024-01-01T00:02:00Z"), now), "2024-01-01T01:00:00Z");
        assert_eq!(last_change(&svc, &[], Some("2024-01-01T00:00:00Z"), now), "2024-01-01T01:00:00Z");
    }
}
