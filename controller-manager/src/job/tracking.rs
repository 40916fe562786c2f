//! The writes of finished-pod tracking: removing the `batch.kubernetes.io/job-tracking`
//! finalizer from a pod, and replacing a Job's status under optimistic concurrency (the
//! resourceVersion the status was derived from), so a count is never applied twice.

use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use super::{Error, TRACKING_FINALIZER};

/// Removes the tracking finalizer from `pod`. `Ok(true)` when the pod no longer carries it
/// (including when the pod is gone).
pub async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<bool, Error> {
    let Some(current) = pod.metadata.finalizers.as_ref() else { return Ok(true) };
    if !current.iter().any(|f| f == TRACKING_FINALIZER) {
        return Ok(true);
    }
    // As upstream: a strategic-merge directive, idempotent and free of preconditions.
    let patch = serde_json::json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(&patch)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(true),
        Err(source) => Err(Error::RemoveFinalizer { pod: pod.name_any(), source }),
    }
}

/// Replaces the status of `job` (as read, with its resourceVersion) by `status`.
pub async fn write_status(api: &Api<Job>, job: &Job, status: JobStatus) -> Result<Job, Error> {
    let mut next = job.clone();
    next.status = Some(status);
    api.replace_status(&job.name_any(), &PostParams::default(), &next)
        .await
        .map_err(|source| Error::UpdateStatus { job: job.name_any(), source })
}
