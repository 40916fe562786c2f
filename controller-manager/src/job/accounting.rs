//! Pure accounting of a Job's pods (upstream `job_controller.go`: `isPodFailed`,
//! `getNewFinishedPods`, `pastBackoffLimitOnFailure`, `wantActive` in `manageJob`, the pod
//! failure backoff). No I/O: the reconciler feeds it the cached pods and acts on the answer.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

use super::TRACKING_FINALIZER;

/// How a pod of a Job ended, as the Job counts it.
pub use client_runtime::pods::{is_active, is_ready, is_terminal, is_terminating as is_deleting, phase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata.finalizers.as_ref().is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

/// Whether only pods that reached phase Failed are replaced (podReplacementPolicy Failed, or a
/// podFailurePolicy) — otherwise a terminating pod counts as failed at once.
fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// The outcome of a pod, if it is finished as far as the Job is concerned (upstream
/// `isPodFailed`: deleted pods that never succeeded count as failed, so orphaned pods are not
/// waited for forever).
pub fn outcome(job: &Job, pod: &Pod) -> Option<Outcome> {
    match phase(pod) {
        "Succeeded" => Some(Outcome::Succeeded),
        "Failed" => Some(Outcome::Failed),
        _ if is_deleting(pod) && !only_replace_failed(job) => Some(Outcome::Failed),
        _ => None,
    }
}

/// Finished pods not yet recorded: they carry the tracking finalizer, are not listed in
/// `uncountedTerminatedPods` and are not awaiting our own finalizer removal.
pub fn newly_finished<'a>(
    job: &Job,
    pods: &'a [std::sync::Arc<Pod>],
    uncounted: &HashSet<String>,
    awaiting: impl Fn(&str) -> bool,
) -> Vec<(&'a Pod, Outcome)> {
    pods.iter()
        .filter(|p| has_tracking_finalizer(p))
        .filter_map(|p| {
            let uid = p.metadata.uid.as_deref()?;
            if uncounted.contains(uid) || awaiting(uid) {
                return None;
            }
            outcome(job, p).map(|o| (p.as_ref(), o))
        })
        .collect()
}

/// Container restarts of active pods, which count towards backoffLimit when
/// restartPolicy is OnFailure (upstream `pastBackoffLimitOnFailure`).
pub fn restarts_of_active(pods: &[std::sync::Arc<Pod>]) -> i32 {
    pods.iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()))
        .map(|c| c.restart_count)
        .sum()
}

/// Whether the Job failed by exceeding its backoff limit.
pub fn past_backoff_limit(job: &Job, failed: i32, pods: &[std::sync::Arc<Pod>]) -> bool {
    let spec = job.spec.as_ref();
    let limit = spec.and_then(|s| s.backoff_limit).unwrap_or(6);
    if failed > limit {
        return true;
    }
    let on_failure =
        spec.and_then(|s| s.template.spec.as_ref()).and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure");
    if !on_failure {
        return false;
    }
    let restarts = restarts_of_active(pods) + failed;
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// How many pods should be active now (upstream `manageJob`, NonIndexed).
pub fn want_active(job: &Job, succeeded: i32, active: i32) -> i32 {
    let spec = job.spec.as_ref();
    let parallelism = spec.and_then(|s| s.parallelism).unwrap_or(1).max(0);
    match spec.and_then(|s| s.completions) {
        // Work-queue Job: once one pod succeeded, start no more.
        None if succeeded > 0 => active.min(parallelism),
        None => parallelism,
        Some(completions) => parallelism.min((completions - succeeded).max(0)),
    }
}

/// Whether the successes complete the Job (NonIndexed).
pub fn complete(job: &Job, succeeded: i32, active: i32) -> bool {
    match job.spec.as_ref().and_then(|s| s.completions) {
        Some(completions) => succeeded >= completions,
        None => succeeded > 0 && active == 0,
    }
}

/// Upstream's pod failure backoff: 10 s after the first failure since the last success,
/// doubling per failure, at most 10 min.
pub fn failure_backoff(failures_since_success: u32) -> Duration {
    if failures_since_success == 0 {
        return Duration::ZERO;
    }
    let exp = (failures_since_success - 1).min(16);
    Duration::from_secs(10).saturating_mul(1 << exp).min(Duration::from_secs(600))
}

#[cfg(test)]
#[path = "accounting_tests.rs"]
mod tests;
