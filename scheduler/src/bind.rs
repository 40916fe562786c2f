//! Writes of a decision: `POST pods/{name}/binding`, and for a pod no node takes, a
//! `FailedScheduling` Warning Event and the `PodScheduled=False` condition.

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

use api::events::{EventType, Recorder};

use crate::pod_info::PendingPod;

/// How a binding ended.
#[derive(Debug)]
pub enum BindOutcome {
    Bound,
    /// The pod is gone or already bound elsewhere: stop trying.
    Moot(kube::Error),
    /// Worth another try after backoff.
    Failed(kube::Error),
}

/// Binds `pod` to `node`.
pub async fn bind(client: &Client, pod: &PendingPod, node: &str) -> BindOutcome {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()),
            ..Default::default()
        },
        target: ObjectReference { kind: Some("Node".into()), name: Some(node.to_string()), ..Default::default() },
    };
    match api.create_subresource::<_, serde_json::Value>("binding", &pod.name, &PostParams::default(), &binding).await {
        Ok(_) => BindOutcome::Bound,
        Err(e) if matches!(status_code(&e), Some(404 | 409)) => BindOutcome::Moot(e),
        Err(e) => BindOutcome::Failed(e),
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Tells the user why `pod` waits: a `FailedScheduling` event and, if it changed, the
/// `PodScheduled=False` condition with reason `Unschedulable`.
pub async fn report_unschedulable(client: &Client, recorder: &Recorder, pod: &PendingPod, message: &str) {
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(pod.name.clone()),
        namespace: Some(pod.namespace.clone()),
        uid: Some(pod.uid.clone()),
        resource_version: pod.resource_version.clone(),
        field_path: None,
    };
    recorder.record(&reference, EventType::Warning, "FailedScheduling", message).await;
    if pod.unschedulable_message.as_deref() == Some(message) {
        return;
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let patch = serde_json::json!({
        "status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": Time(k8s_openapi::jiff::Timestamp::now()),
        }]}
    });
    if let Err(e) = api.patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
        tracing::warn!(pod = %pod.key(), error = %e, "could not set the PodScheduled condition");
    }
}
