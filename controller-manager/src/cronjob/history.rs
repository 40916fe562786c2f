//! History limits (upstream `cleanupFinishedJobs`/`removeOldestJobs`): of a CronJob's finished
//! Jobs, keep the newest `successfulJobsHistoryLimit` that completed and the newest
//! `failedJobsHistoryLimit` that failed, ordered by start time (unstarted last, then by name).

use std::cmp::Ordering;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::{CronJob, Job};

use client_runtime::jobs::is_finished;

fn failed(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
}

fn by_start_time(a: &Arc<Job>, b: &Arc<Job>) -> Ordering {
    let start = |j: &Job| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    match (start(a), start(b)) {
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (x, y) if x == y => a.metadata.name.cmp(&b.metadata.name),
        (x, y) => x.cmp(&y),
    }
}

fn oldest_beyond(mut jobs: Vec<Arc<Job>>, limit: Option<i32>) -> Vec<Arc<Job>> {
    let Some(limit) = limit else { return Vec::new() };
    let keep = limit.max(0) as usize;
    if jobs.len() <= keep {
        return Vec::new();
    }
    jobs.sort_by(by_start_time);
    let excess = jobs.len() - keep;
    jobs.truncate(excess);
    jobs
}

/// The finished Jobs to delete, oldest first.
pub fn to_delete(cj: &CronJob, jobs: &[Arc<Job>]) -> Vec<Arc<Job>> {
    let spec = cj.spec.as_ref();
    let (ok_limit, failed_limit) =
        (spec.and_then(|s| s.successful_jobs_history_limit), spec.and_then(|s| s.failed_jobs_history_limit));
    let finished = jobs.iter().filter(|j| is_finished(j));
    let (bad, good): (Vec<Arc<Job>>, Vec<Arc<Job>>) = finished.cloned().partition(|j| failed(j));
    let mut out = oldest_beyond(good, ok_limit);
    out.extend(oldest_beyond(bad, failed_limit));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(name: &str, start: Option<&str>, cond: Option<&str>) -> Arc<Job> {
        let conditions: Vec<_> = cond.iter().map(|c| json!({"type": c, "status": "True"})).collect();
        let status = json!({"startTime": start, "conditions": conditions});
        Arc::new(serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).expect("job"))
    }

    fn cj(ok: Option<i32>, failed: Option<i32>) -> CronJob {
        serde_json::from_value(json!({"metadata": {"name": "cj"}, "spec": {"schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {}}},
            "successfulJobsHistoryLimit": ok, "failedJobsHistoryLimit": failed}}))
        .expect("cronjob")
    }

    fn names(v: Vec<Arc<Job>>) -> Vec<String> {
        v.into_iter().filter_map(|j| j.metadata.name.clone()).collect()
    }

    #[test]
    fn keeps_the_newest_of_each_kind() {
        let jobs = vec![
            job("c3", Some("2024-01-01T03:00:00Z"), Some("Complete")),
            job("c1", Some("2024-01-01T01:00:00Z"), Some("Complete")),
            job("c2", Some("2024-01-01T02:00:00Z"), Some("Complete")),
            job("f1", Some("2024-01-01T01:30:00Z"), Some("Failed")),
            job("f2", Some("2024-01-01T02:30:00Z"), Some("Failed")),
            job("running", Some("2024-01-01T00:00:00Z"), None),
            job("never-started", None, Some("Failed")),
        ];
        // (successful limit, failed limit, deleted)
        let cases: &[(Option<i32>, Option<i32>, &[&str])] = &[
            (Some(3), Some(1), &["f1", "f2"]),
            (Some(1), Some(1), &["c1", "c2", "f1", "f2"]),
            (Some(0), Some(3), &["c1", "c2", "c3"]),
            (None, None, &[]),
            (Some(5), Some(0), &["f1", "f2", "never-started"]),
        ];
        for (ok, failed, want) in cases {
            assert_eq!(names(to_delete(&cj(*ok, *failed), &jobs)), *want, "limits {ok:?}/{failed:?}");
        }
    }
}
