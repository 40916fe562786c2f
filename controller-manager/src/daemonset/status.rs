//! DaemonSet status (upstream `updateDaemonSetStatus`): per eligible node whether its oldest
//! daemon pod is scheduled, ready, available and current; pods on ineligible nodes are
//! misscheduled.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSetStatus;
use k8s_openapi::api::core::v1::Pod;

use super::manage::{oldest_first, NodeFit};
use super::pods::{is_available, is_ready};

pub fn compute(
    nodes: &[NodeFit],
    by_node: &HashMap<String, Vec<Arc<Pod>>>,
    updated: &dyn Fn(&Pod) -> bool,
    min_ready_seconds: i32,
    now: Timestamp,
) -> DaemonSetStatus {
    let mut s = DaemonSetStatus::default();
    let (mut available, mut updated_n) = (0, 0);
    for node in nodes {
        let pods = by_node.get(&node.name).filter(|p| !p.is_empty());
        if !node.should_run {
            s.number_misscheduled += i32::from(pods.is_some());
            continue;
        }
        s.desired_number_scheduled += 1;
        let Some(pods) = pods else { continue };
        s.current_number_scheduled += 1;
        let mut sorted = pods.clone();
        sorted.sort_by(oldest_first);
        let pod = &sorted[0];
        if is_ready(pod) {
            s.number_ready += 1;
            available += i32::from(is_available(pod, min_ready_seconds, now));
        }
        updated_n += i32::from(updated(pod));
    }
    s.number_available = Some(available);
    s.number_unavailable = Some(s.desired_number_scheduled - available);
    s.updated_number_scheduled = Some(updated_n);
    s
}
