//! One sync of one Job (upstream `syncJob`): count newly finished pods exactly once, decide
//! whether the Job is done, create or delete pods towards the wanted number of active ones,
//! and write the status.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::events::{reference, EventType};
use client_runtime::Action;
use k8s_openapi::api::batch::v1::{Job, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use super::accounting::{self, Outcome};
use super::conditions::{self, Finish};
use api::owner::is_controlled_by as controlled_by;

use super::pods::{deletion_order, new_pod};
use super::tracking::{remove_finalizer, write_status};
use client_runtime::expectations::child_key;

use super::{Backoff, Error, JobCtx};

pub async fn sync(job: Arc<Job>, c: Arc<JobCtx>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (job.namespace(), job.uid()) else { return Ok(Action::await_change()) };
    let pod_api: Api<Pod> = Api::namespaced(c.ctx.client.clone(), &ns);
    let job_api: Api<Job> = Api::namespaced(c.ctx.client.clone(), &ns);
    let pods: Vec<Arc<Pod>> =
        c.pods.state_filter(|p| p.metadata.namespace.as_deref() == Some(&ns) && controlled_by(&p.metadata, &uid));

    if job.metadata.deletion_timestamp.is_some() || conditions::is_finished(&job) {
        // Nothing more to count: free every pod so it can go.
        for pod in pods.iter().filter(|p| accounting::has_tracking_finalizer(p)) {
            remove_finalizer(&pod_api, pod).await?;
        }
        if job.metadata.deletion_timestamp.is_some() {
            forget(&c, &uid);
        }
        return Ok(Action::await_change());
    }

    let writes_seen = c.pod_writes.satisfied(&uid);

    let now = Time(jiff::Timestamp::now());
    let mut job_now: Job = (*job).clone();
    let mut status = job.status.clone().unwrap_or_default();
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut unc_succeeded = uncounted.succeeded.unwrap_or_default();
    let mut unc_failed = uncounted.failed.unwrap_or_default();

    // 1. Record newly finished pods before touching them, so a crash cannot lose or repeat them.
    let known: HashSet<String> = unc_succeeded.iter().chain(unc_failed.iter()).cloned().collect();
    let fresh = accounting::newly_finished(&job, &pods, &known, |u| c.counted.awaits_deletion(&uid, u));
    if !fresh.is_empty() {
        for (pod, outcome) in &fresh {
            let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
            match outcome {
                Outcome::Succeeded => unc_succeeded.push(pod_uid),
                Outcome::Failed => unc_failed.push(pod_uid),
            }
        }
        record_backoff(&c, &uid, &fresh);
        status.uncounted_terminated_pods = Some(uncounted_of(&unc_succeeded, &unc_failed));
        job_now = write_status(&job_api, &job_now, status.clone()).await?;
    }

    // 2. Free the recorded pods of their finalizer, then move them to the counters.
    let mut counted_s = 0;
    let mut counted_f = 0;
    let mut first_err = None;
    for (list, counter) in [(&mut unc_succeeded, &mut counted_s), (&mut unc_failed, &mut counted_f)] {
        let mut still = Vec::new();
        for pod_uid in list.drain(..) {
            let pod = pods.iter().find(|p| p.metadata.uid.as_deref() == Some(pod_uid.as_str()));
            // Raised before the write: the informer may show the pod without its finalizer
            // before the patch returns.
            c.counted.raise_deletions(&uid, [pod_uid.clone()]);
            let freed = match pod {
                Some(p) => remove_finalizer(&pod_api, p).await,
                None => Ok(true),
            };
            match freed {
                Ok(_) => *counter += 1,
                Err(e) => {
                    c.counted.deletion_observed(&uid, &pod_uid);
                    first_err.get_or_insert(e);
                    still.push(pod_uid);
                }
            }
        }
        *list = still;
    }
    status.succeeded = Some(status.succeeded.unwrap_or(0) + counted_s);
    status.failed = Some(status.failed.unwrap_or(0) + counted_f);
    status.uncounted_terminated_pods = Some(uncounted_of(&unc_succeeded, &unc_failed));
    let succeeded = status.succeeded.unwrap_or(0);
    let failed = status.failed.unwrap_or(0);

    // 3. Decide the outcome.
    let active: Vec<Arc<Pod>> = pods.iter().filter(|p| accounting::is_active(p)).cloned().collect();
    let mut terminating = pods.iter().filter(|p| accounting::is_deleting(p) && !accounting::is_terminal(p)).count();
    let suspended = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);
    let mut conds = status.conditions.clone().unwrap_or_default();
    if !suspended && status.start_time.is_none() {
        status.start_time = Some(now.clone());
    }
    let mut finish = conditions::decided(&conds);
    if finish.is_none() {
        let pending_f = failed + unc_failed.len() as i32;
        let pending_s = succeeded + unc_succeeded.len() as i32;
        finish = if accounting::past_backoff_limit(&job, pending_f, &pods) {
            Some(Finish::backoff_limit())
        } else if !suspended && past_deadline(&job, status.start_time.as_ref(), &now) {
            Some(Finish::deadline())
        } else if accounting::complete(&job, pending_s, active.len() as i32) {
            Some(Finish::completions())
        } else {
            None
        };
        if let Some(f) = &finish {
            tracing::info!(reason = %f.reason, "job outcome decided");
            conditions::set(&mut conds, f.interim, "True", &f.reason, &f.message, &now);
        }
    }

    // 4. Create or delete pods.
    let mut active_n = active.len();
    let mut requeue: Option<Duration> = None;
    let to_delete: Vec<Arc<Pod>> = if finish.is_some() || suspended {
        active.clone()
    } else if writes_seen {
        let want =
            accounting::want_active(&job, succeeded + unc_succeeded.len() as i32, active_n as i32).max(0) as usize;
        if active_n > want {
            deletion_order(active.clone()).into_iter().take(active_n - want).collect()
        } else {
            if active_n < want {
                match backoff_remaining(&c, &uid) {
                    Some(wait) => requeue = Some(wait),
                    None => active_n += create_pods(&c, &job, &pod_api, &uid, want - active_n).await?,
                }
            }
            Vec::new()
        }
    } else {
        Vec::new()
    };
    for pod in &to_delete {
        delete_pod(&c, &job, &pod_api, &uid, pod).await?;
        active_n -= 1;
        terminating += 1;
    }

    // 5. Suspension and the terminal condition.
    if finish.is_none() {
        let was_suspended = conditions::is_true(&conds, conditions::SUSPENDED);
        if suspended && !was_suspended {
            conditions::set(&mut conds, conditions::SUSPENDED, "True", "JobSuspended", "Job suspended", &now);
            c.recorder.record(&reference(&*job), EventType::Normal, "Suspended", "Job suspended").await;
        } else if !suspended && was_suspended {
            conditions::set(&mut conds, conditions::SUSPENDED, "False", "JobResumed", "Job resumed", &now);
            // The deadline counts from the resumption.
            status.start_time = Some(now.clone());
            c.recorder.record(&reference(&*job), EventType::Normal, "Resumed", "Job resumed").await;
        }
    }
    let settled = unc_succeeded.is_empty() && unc_failed.is_empty() && terminating == 0 && active_n == 0;
    if let Some(f) = finish.as_ref().filter(|_| settled) {
        conditions::set(&mut conds, f.terminal(), "True", &f.reason, &f.message, &now);
        if f.terminal() == conditions::COMPLETE {
            status.completion_time = Some(now.clone());
            c.recorder.record(&reference(&*job), EventType::Normal, "Completed", "Job completed").await;
        } else {
            c.recorder.record(&reference(&*job), EventType::Warning, &f.reason, &f.message).await;
        }
        tracing::info!(condition = f.terminal(), reason = %f.reason, "job finished");
    }

    status.conditions = if conds.is_empty() { None } else { Some(conds) };
    status.active = Some(active_n as i32);
    status.ready = Some(active.iter().filter(|p| accounting::is_ready(p)).count().min(active_n) as i32);
    status.terminating = Some(terminating as i32);
    if job_now.status.as_ref() != Some(&status) {
        write_status(&job_api, &job_now, status.clone()).await?;
    }
    if let Some(e) = first_err {
        return Err(e);
    }

    // 6. When to look again without a change: at the deadline, or when the backoff ends.
    if finish.is_none() && !suspended {
        if let Some(left) = deadline_left(&job, status.start_time.as_ref(), &now) {
            requeue = Some(requeue.map_or(left, |r| r.min(left)));
        }
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

fn forget(c: &JobCtx, uid: &str) {
    c.pod_writes.forget(uid);
    c.counted.forget(uid);
    c.backoff.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
}

fn uncounted_of(succeeded: &[String], failed: &[String]) -> UncountedTerminatedPods {
    UncountedTerminatedPods {
        succeeded: (!succeeded.is_empty()).then(|| succeeded.to_vec()),
        failed: (!failed.is_empty()).then(|| failed.to_vec()),
    }
}

fn record_backoff(c: &JobCtx, uid: &str, fresh: &[(&Pod, Outcome)]) {
    let mut map = c.backoff.lock().unwrap_or_else(|p| p.into_inner());
    if fresh.iter().any(|(_, o)| *o == Outcome::Succeeded) {
        map.remove(uid);
    }
    let failures = fresh.iter().filter(|(_, o)| *o == Outcome::Failed).count() as u32;
    if failures > 0 {
        let b = map.entry(uid.to_string()).or_insert(Backoff { failures: 0, last_failure: Instant::now() });
        b.failures += failures;
        b.last_failure = Instant::now();
    }
}

/// Time left before failed pods may be replaced, if any.
fn backoff_remaining(c: &JobCtx, uid: &str) -> Option<Duration> {
    let map = c.backoff.lock().unwrap_or_else(|p| p.into_inner());
    let b = map.get(uid)?;
    let wait = accounting::failure_backoff(b.failures).checked_sub(b.last_failure.elapsed())?;
    (!wait.is_zero()).then_some(wait)
}

fn deadline_left(job: &Job, start: Option<&Time>, now: &Time) -> Option<Duration> {
    let secs = job.spec.as_ref()?.active_deadline_seconds?;
    let end = start?.0.checked_add(jiff::SignedDuration::from_secs(secs)).ok()?;
    let left = now.0.duration_until(end);
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

fn past_deadline(job: &Job, start: Option<&Time>, now: &Time) -> bool {
    deadline_left(job, start, now).is_some_and(|d| d.is_zero())
}

async fn create_pods(c: &JobCtx, job: &Job, api: &Api<Pod>, uid: &str, n: usize) -> Result<usize, Error> {
    let pod = new_pod(job);
    let mut created = 0;
    c.pod_writes.raise_creations(uid, n);
    for attempt in 0..n {
        match api.create(&PostParams::default(), &pod).await {
            Ok(p) => {
                let pname = p.name_any();
                created += 1;
                tracing::info!(pod = %pname, "created pod");
                c.recorder
                    .record(&reference(job), EventType::Normal, "SuccessfulCreate", &format!("Created pod: {pname}"))
                    .await;
            }
            Err(source) => {
                // Neither this pod nor the ones not tried will appear.
                (attempt..n).for_each(|_| c.pod_writes.creation_observed(uid));
                let msg = format!("Error creating: {source}");
                c.recorder.record(&reference(job), EventType::Warning, "FailedCreate", &msg).await;
                return Err(Error::CreatePod { job: job.name_any(), source });
            }
        }
    }
    Ok(created)
}

async fn delete_pod(c: &JobCtx, job: &Job, api: &Api<Pod>, uid: &str, pod: &Pod) -> Result<(), Error> {
    let pname = pod.name_any();
    let key = child_key(pod);
    c.pod_writes.raise_deletions(uid, [key.clone()]);
    match api.delete(&pname, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(e) => {
            // Gone already, or not deleted: no deletion will be observed for this request.
            c.pod_writes.deletion_observed(uid, &key);
            if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                return Err(Error::DeletePod { job: job.name_any(), pod: pname, source: e });
            }
        }
    }
    tracing::info!(pod = %pname, "deleted pod");
    c.recorder.record(&reference(job), EventType::Normal, "SuccessfulDelete", &format!("Deleted pod: {pname}")).await;
    Ok(())
}
