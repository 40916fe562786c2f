//! The pods a Job runs: built from its template (upstream `GetPodFromTemplate` plus the Job's
//! labels, owner reference and tracking finalizer), and which active pods to remove first.

use std::sync::Arc;

use api::owner::controller_ref;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::accounting::is_ready;
use super::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL, TRACKING_FINALIZER,
};

/// A new pod for `job` (the API server fills in the name from `generateName`).
pub fn new_pod(job: &Job) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let template = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    // The API server puts these on the template; make sure of them for manual selectors too.
    labels.entry(CONTROLLER_UID_LABEL.into()).or_insert_with(|| uid.clone());
    labels.entry(LEGACY_CONTROLLER_UID_LABEL.into()).or_insert_with(|| uid.clone());
    labels.entry(JOB_NAME_LABEL.into()).or_insert_with(|| name.clone());
    labels.entry(LEGACY_JOB_NAME_LABEL.into()).or_insert_with(|| name.clone());
    let mut finalizers = tmeta.finalizers.unwrap_or_default();
    finalizers.push(TRACKING_FINALIZER.to_string());
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_ref(job)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Active pods in the order to delete them when there are too many (upstream
/// `controller.ActivePods` sorting): unscheduled before scheduled, pending before running,
/// not ready before ready, newest first.
pub fn deletion_order(mut pods: Vec<Arc<Pod>>) -> Vec<Arc<Pod>> {
    let rank = |p: &Pod| {
        let scheduled = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        let running = phase == "Running";
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (scheduled, running, is_ready(p), std::cmp::Reverse(created))
    };
    pods.sort_by_key(|p| rank(p));
    pods
}
