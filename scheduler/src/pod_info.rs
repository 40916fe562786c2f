//! What the scheduler keeps of a pod: for a bound pod only what it takes from its node; for a
//! pending pod what it needs from one. Computed once per watch event, off the scheduling loop.

use k8s_openapi::api::core::v1::{NodeSelector, Pod, PreferredSchedulingTerm, Toleration};

use crate::host_ports::{pod_host_ports, HostPort};
use crate::resources::{pod_requests, PodRequests};

/// What a pod takes from its node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsage {
    pub requests: PodRequests,
    pub ports: Vec<HostPort>,
    /// UID of the controller owner (ReplicaSet, Job, ...), for spreading siblings.
    pub owner: Option<String>,
}

/// Everything the filters and scores look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    pub usage: PodUsage,
    pub node_selector: Vec<(String, String)>,
    pub required: Option<NodeSelector>,
    pub preferred: Vec<PreferredSchedulingTerm>,
    pub tolerations: Vec<Toleration>,
}

/// A pod waiting for a node.
#[derive(Debug, Clone, Default)]
pub struct PendingPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: Option<String>,
    pub priority: i32,
    pub needs: Needs,
    /// The message of the pod's current `PodScheduled=False` condition, if any.
    pub unschedulable_message: Option<String>,
}

impl PendingPod {
    /// `namespace/name`, for logs.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// How the scheduler sees one pod from the watch.
#[derive(Debug)]
pub enum Classified {
    /// Ours to schedule.
    Pending(Box<PendingPod>),
    /// Bound to `node` and still taking resources there.
    Bound { uid: String, node: String, usage: PodUsage },
    /// Neither: finished, terminating before it was bound, held by scheduling gates, or
    /// another scheduler's.
    Ignored { uid: String },
}

/// The key the scheduler tracks a pod by: its UID (or `namespace/name` if it has none).
pub fn pod_uid(pod: &Pod) -> String {
    match &pod.metadata.uid {
        Some(uid) if !uid.is_empty() => uid.clone(),
        _ => format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        ),
    }
}

/// Sorts a pod into pending, bound or ignored, for scheduler `scheduler_name`.
pub fn classify(pod: &Pod, scheduler_name: &str) -> Classified {
    let uid = pod_uid(pod);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let Some(spec) = &pod.spec else { return Classified::Ignored { uid } };
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return Classified::Ignored { uid };
    }
    if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Classified::Bound { uid, node: node.to_string(), usage: usage(pod) };
    }
    let ours =
        spec.scheduler_name.as_deref().filter(|s| !s.is_empty()).unwrap_or("default-scheduler") == scheduler_name;
    let gated = spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty());
    if !ours || gated || pod.metadata.deletion_timestamp.is_some() {
        return Classified::Ignored { uid };
    }
    let affinity = spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref());
    let unschedulable_message = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False"))
        .map(|c| c.message.clone().unwrap_or_default());
    Classified::Pending(Box::new(PendingPod {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid,
        resource_version: pod.metadata.resource_version.clone(),
        priority: spec.priority.unwrap_or(0),
        needs: Needs {
            usage: usage(pod),
            node_selector: spec.node_selector.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
            required: affinity.and_then(|a| a.required_during_scheduling_ignored_during_execution.clone()),
            preferred: affinity
                .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.clone())
                .unwrap_or_default(),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
        },
        unschedulable_message,
    }))
}

/// What `pod` takes from the node it is (or will be) bound to.
pub fn usage(pod: &Pod) -> PodUsage {
    let Some(spec) = &pod.spec else { return PodUsage::default() };
    let owner =
        pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true)).map(|o| o.uid.clone());
    PodUsage { requests: pod_requests(spec), ports: pod_host_ports(spec), owner }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

    fn pod(node: Option<&str>, scheduler: Option<&str>, phase: Option<&str>, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                deletion_timestamp: deleting.then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                owner_references: Some(vec![
                    OwnerReference { uid: "not-controller".into(), ..Default::default() },
                    OwnerReference { uid: "rs-1".into(), controller: Some(true), ..Default::default() },
                ]),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(String::from),
                scheduler_name: scheduler.map(String::from),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: phase.map(String::from),
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    message: Some("0/1 nodes are available".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn classification() {
        let kind = |p: &Pod| match classify(p, "default-scheduler") {
            Classified::Pending(_) => "pending",
            Classified::Bound { .. } => "bound",
            Classified::Ignored { .. } => "ignored",
        };
        assert_eq!(kind(&pod(None, None, Some("Pending"), false)), "pending");
        assert_eq!(kind(&pod(None, Some("default-scheduler"), None, false)), "pending");
        assert_eq!(kind(&pod(None, Some("other"), None, false)), "ignored");
        assert_eq!(kind(&pod(None, None, None, true)), "ignored");
        assert_eq!(kind(&pod(Some("n1"), None, Some("Running"), false)), "bound");
        assert_eq!(kind(&pod(Some("n1"), Some("other"), Some("Running"), true)), "bound");
        assert_eq!(kind(&pod(Some("n1"), None, Some("Succeeded"), false)), "ignored");
        assert_eq!(kind(&pod(Some("n1"), None, Some("Failed"), false)), "ignored");
        assert_eq!(kind(&Pod::default()), "ignored");
        let mut gated = pod(None, None, None, false);
        if let Some(spec) = gated.spec.as_mut() {
            spec.scheduling_gates = Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate { name: "wait".into() }]);
        }
        assert_eq!(kind(&gated), "ignored");
        match classify(&pod(None, None, None, false), "default-scheduler") {
            Classified::Pending(p) => {
                assert_eq!(p.uid, "u1");
                assert_eq!(p.needs.usage.owner.as_deref(), Some("rs-1"));
                assert_eq!(p.unschedulable_message.as_deref(), Some("0/1 nodes are available"));
                assert_eq!(p.key(), "ns/p");
            }
            other => panic!("want pending, got {other:?}"),
        }
    }
}
