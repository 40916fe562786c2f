//! The Job controller (upstream `pkg/controller/job/job_controller.go`), NonIndexed completion
//! mode: runs pods from the template up to `parallelism` until `completions` succeeded, counts
//! finished pods exactly once through the `batch.kubernetes.io/job-tracking` finalizer and
//! `status.uncountedTerminatedPods`, fails the Job at `backoffLimit` or `activeDeadlineSeconds`,
//! honours `suspend`, and writes the Complete/Failed conditions (after SuccessCriteriaMet/
//! FailureTarget, as 1.33 does). [`ttl`] is the TTL-after-finished controller; [`orphans`] frees
//! pods whose Job is gone of the tracking finalizer.

mod accounting;
mod conditions;
mod orphans;
mod pods;
mod sync;
mod tracking;
pub mod ttl;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use client_runtime::{Change, Controller, Expectations, Informers, ObjectRef, Store};
use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

use crate::Context;

/// Upstream's `--concurrent-job-syncs`.
const WORKERS: u16 = 5;

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating a pod for job {job}: {source}")]
    CreatePod { job: String, source: kube::Error },
    #[error("deleting pod {pod} of job {job}: {source}")]
    DeletePod { job: String, pod: String, source: kube::Error },
    #[error("removing the tracking finalizer from pod {pod}: {source}")]
    RemoveFinalizer { pod: String, source: kube::Error },
    #[error("updating the status of job {job}: {source}")]
    UpdateStatus { job: String, source: kube::Error },
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    last_failure: Instant,
}

/// The Job controller's state beside the shared [`Context`].
pub struct JobCtx {
    ctx: Arc<Context>,
    pods: Store<Pod>,
    recorder: api::events::Recorder,
    /// Pods created or deleted, by Job UID (upstream `expectations`).
    pod_writes: Arc<Expectations>,
    /// Pods (by UID) whose tracking finalizer was removed after they were counted, by Job UID
    /// (upstream `finalizerExpectations`): deletions of the finalizer, awaited the same way.
    counted: Arc<Expectations>,
    backoff: Mutex<HashMap<String, Backoff>>,
}

/// The Job controller (`--controllers` name `job`), with its orphan-pod cleanup.
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let orphans = orphans::controller(inf, ctx.clone());
    let jctx = Arc::new(JobCtx {
        recorder: ctx.recorder("job-controller"),
        ctx,
        pods: inf.store::<Pod>(),
        pod_writes: Arc::default(),
        counted: Arc::default(),
        backoff: Mutex::new(HashMap::new()),
    });
    let (writes, counted) = (jctx.pod_writes.clone(), jctx.counted.clone());
    let main = Controller::new("job", inf)
        .watches(inf, move |c: &Change<Pod>| pod_changed(&writes, &counted, c))
        .workers(WORKERS)
        .run(inf, sync::sync, jctx);
    futures::future::join(main, orphans).map(|_| ()).boxed()
}

/// The Job controlling a pod, if any.
fn job_of(pod: &Pod) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    api::owner::controller_of(&pod.metadata).filter(|r| r.kind == "Job" && r.api_version == "batch/v1")
}

/// A pod change (upstream `addPod`/`updatePod`/`deletePod`): lowers its Job's expectations — pod
/// writes, and the removal of the tracking finalizer — and names the Jobs to sync (the pod's
/// controller, old and new when that changed).
fn pod_changed(writes: &Expectations, counted: &Expectations, change: &Change<Pod>) -> Vec<ObjectRef<Job>> {
    let pod = change.object();
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    if let Change::Applied { previous: Some(old), .. } = change {
        if let Some(r) = job_of(old).filter(|r| job_of(pod).is_none_or(|now| now.uid != r.uid)) {
            out.push(ObjectRef::new(&r.name).within(ns));
        }
    }
    if let Some(r) = job_of(pod) {
        writes.observe(&r.uid, change);
        if change.is_deleted() || !accounting::has_tracking_finalizer(pod) {
            counted.deletion_observed(&r.uid, pod.metadata.uid.as_deref().unwrap_or_default());
        }
        out.push(ObjectRef::new(&r.name).within(ns));
    }
    out
}
