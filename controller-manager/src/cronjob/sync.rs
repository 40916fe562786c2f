//! One sync of one CronJob (upstream `sync` + `syncCronJob` + `cleanupFinishedJobs`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use api::events::{reference, EventType};
use client_runtime::Action;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use super::schedule::Schedule;
use super::template::{job_for, job_name};
use super::times::Timing;
use super::{history, CronCtx, Error};
use api::owner::is_controlled_by as controlled_by;
use client_runtime::jobs::is_finished;

/// Upstream's threshold for the TooManyMissedTimes event.
const TOO_MANY_MISSED: i64 = 100;

fn succeeded(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
}

fn finished_condition(job: &Job) -> &str {
    if succeeded(job) {
        "Complete"
    } else {
        "Failed"
    }
}

fn job_ref(job: &Job) -> ObjectReference {
    api::events::reference(job)
}

struct Sync<'a> {
    c: &'a CronCtx,
    cj: CronJob,
    status: CronJobStatus,
    jobs_api: Api<Job>,
}

impl Sync<'_> {
    async fn event(&self, kind: EventType, reason: &str, message: &str) {
        self.c.recorder.record(&reference(&self.cj), kind, reason, message).await;
    }

    fn in_active(&self, uid: Option<&str>) -> bool {
        self.status.active.iter().flatten().any(|r| r.uid.as_deref() == uid)
    }

    fn remove_active(&mut self, uid: Option<&str>) {
        if let Some(active) = self.status.active.as_mut() {
            active.retain(|r| r.uid.as_deref() != uid);
        }
    }

    /// Deletes a Job with background propagation (upstream `deleteJob`).
    async fn delete_job(&mut self, job: &Job) -> Result<(), Error> {
        let name = job.name_any();
        match self.jobs_api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {
                self.remove_active(job.uid().as_deref());
                return Ok(());
            }
            Err(source) => {
                self.event(EventType::Warning, "FailedDelete", &format!("Deleted job: {source}")).await;
                return Err(Error::Job { action: "deleting", job: name, source });
            }
        }
        self.remove_active(job.uid().as_deref());
        tracing::info!(job = %name, "deleted job");
        self.event(EventType::Normal, "SuccessfulDelete", &format!("Deleted job {name}")).await;
        Ok(())
    }

    /// Reconciles `status.active` with the Jobs that exist.
    async fn track_jobs(&mut self, jobs: &[Arc<Job>]) -> Result<(), Error> {
        let children: HashSet<String> = jobs.iter().filter_map(|j| j.uid()).collect();
        for j in jobs {
            let uid = j.uid();
            let found = self.in_active(uid.as_deref());
            if !found && !is_finished(j) {
                // Maybe our own status write is not in the cache yet: ask the API.
                let api: Api<CronJob> =
                    Api::namespaced(self.c.ctx.client.clone(), &self.cj.namespace().unwrap_or_default());
                let current = api
                    .get(&self.cj.name_any())
                    .await
                    .map_err(|source| Error::Get { cronjob: self.cj.name_any(), source })?;
                let listed = current.status.as_ref().and_then(|s| s.active.as_ref());
                if !listed.is_some_and(|a| a.iter().any(|r| r.uid == uid)) {
                    let msg = format!("Saw a job that the controller did not create or forgot: {}", j.name_any());
                    self.event(EventType::Warning, "UnexpectedJob", &msg).await;
                }
            } else if found && is_finished(j) {
                self.remove_active(uid.as_deref());
                let msg = format!("Saw completed job: {}, condition: {}", j.name_any(), finished_condition(j));
                self.event(EventType::Normal, "SawCompletedJob", &msg).await;
            }
            if succeeded(j) {
                let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                if let Some(done) = done {
                    if self.status.last_successful_time.as_ref().is_none_or(|t| done.0 > t.0) {
                        self.status.last_successful_time = Some(done);
                    }
                }
            }
        }
        // Jobs listed as active that are gone (checked with the API, the cache may lag).
        let listed: Vec<ObjectReference> = self.status.active.clone().unwrap_or_default();
        for r in listed {
            if r.uid.as_ref().is_some_and(|u| children.contains(u)) {
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            match self.jobs_api.get_opt(&name).await {
                Ok(None) => {
                    self.event(EventType::Normal, "MissingJob", &format!("Active job went missing: {name}")).await;
                    self.remove_active(r.uid.as_deref());
                }
                Ok(Some(_)) => {}
                Err(source) => return Err(Error::Job { action: "reading", job: name, source }),
            }
        }
        Ok(())
    }

    /// Starts the Job of the latest missed start time, if any; returns when to look again.
    async fn schedule(
        &mut self,
        sched: &Schedule,
        zone: Option<&TimeZone>,
        now: Timestamp,
    ) -> Result<Option<Duration>, Error> {
        let local = TimeZone::system();
        let tz = zone.unwrap_or(&local);
        let spec = self.cj.spec.clone().unwrap_or_default();
        let created = self.cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
        let timing = Timing {
            schedule: sched,
            tz,
            created,
            last_schedule: self.status.last_schedule_time.as_ref().map(|t| t.0),
            starting_deadline_seconds: spec.starting_deadline_seconds,
        };
        let missed = match timing.missed(now, true) {
            Ok(m) => m,
            Err(e) => {
                self.event(EventType::Warning, "InvalidSchedule", &format!("invalid schedule: {}: {e}", spec.schedule))
                    .await;
                return Ok(None);
            }
        };
        if missed.count > TOO_MANY_MISSED {
            let msg = format!(
                "too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                missed.count
            );
            self.event(EventType::Warning, "TooManyMissedTimes", &msg).await;
        }
        let next = timing.requeue_after(now);
        let Some(scheduled) = missed.most_recent else { return Ok(next) };
        if let Some(sd) = spec.starting_deadline_seconds {
            let too_late = scheduled.checked_add(jiff::SignedDuration::from_secs(sd)).is_ok_and(|end| end < now);
            if too_late {
                let msg =
                    format!("Missed scheduled time to start a job: {}", scheduled.strftime("%a, %d %b %Y %H:%M:%S %z"));
                self.event(EventType::Warning, "MissSchedule", &msg).await;
                return Ok(next);
            }
        }
        let cj_name = self.cj.name_any();
        let name = job_name(&cj_name, scheduled);
        let already = self.status.active.iter().flatten().any(|r| r.name.as_deref() == Some(&name))
            || self.status.last_schedule_time.as_ref().is_some_and(|t| t.0 == scheduled);
        if already {
            return Ok(next);
        }
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        let active = self.status.active.clone().unwrap_or_default();
        if policy == "Forbid" && !active.is_empty() {
            let msg = "Not starting job because prior execution is running and concurrency policy is Forbid";
            self.event(EventType::Normal, "JobAlreadyActive", msg).await;
            return Ok(next);
        }
        if policy == "Replace" {
            for r in active {
                let jname = r.name.clone().unwrap_or_default();
                match self.jobs_api.get_opt(&jname).await {
                    Ok(Some(job)) => self.delete_job(&job).await?,
                    Ok(None) => self.remove_active(r.uid.as_deref()),
                    Err(source) => {
                        self.event(EventType::Warning, "FailedGet", &format!("Get job: {source}")).await;
                        return Err(Error::Job { action: "reading", job: jname, source });
                    }
                }
            }
        }
        let job = job_for(&self.cj, scheduled, zone);
        let created = match self.jobs_api.create(&PostParams::default(), &job).await {
            Ok(j) => {
                tracing::info!(job = %name, "created job");
                self.event(EventType::Normal, "SuccessfulCreate", &format!("Created job {name}")).await;
                j
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let j = self.jobs_api.get(&name).await.map_err(|source| Error::Job {
                    action: "reading",
                    job: name.clone(),
                    source,
                })?;
                let ours = self.cj.uid().is_some_and(|u| controlled_by(&j.metadata, &u));
                if !ours || self.in_active(j.uid().as_deref()) {
                    return Ok(next);
                }
                j
            }
            Err(source) => {
                self.event(EventType::Warning, "FailedCreate", &format!("Error creating job: {source}")).await;
                return Err(Error::Job { action: "creating", job: name, source });
            }
        };
        self.status.active.get_or_insert_with(Vec::new).push(job_ref(&created));
        self.status.last_schedule_time = Some(Time(scheduled));
        Ok(next)
    }
}

pub async fn sync(cj: Arc<CronJob>, c: Arc<CronCtx>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (cj.namespace(), cj.uid()) else { return Ok(Action::await_change()) };
    let jobs: Vec<Arc<Job>> =
        c.jobs.state_filter(|j| j.metadata.namespace.as_deref() == Some(&ns) && controlled_by(&j.metadata, &uid));
    let mut s = Sync {
        c: &c,
        status: cj.status.clone().unwrap_or_default(),
        cj: (*cj).clone(),
        jobs_api: Api::namespaced(c.ctx.client.clone(), &ns),
    };
    s.track_jobs(&jobs).await?;

    let mut requeue = None;
    let spec = cj.spec.clone().unwrap_or_default();
    if cj.metadata.deletion_timestamp.is_none() && !spec.suspend.unwrap_or(false) {
        let zone = match spec.time_zone.as_deref().map(TimeZone::get) {
            None => Some(None),
            Some(Ok(tz)) => Some(Some(tz)),
            Some(Err(_)) => None,
        };
        match (zone, Schedule::parse(&spec.schedule)) {
            (None, _) => {
                let tz = spec.time_zone.clone().unwrap_or_default();
                s.event(EventType::Warning, "UnknownTimeZone", &format!("invalid timeZone: {tz:?}")).await;
            }
            (_, Err(e)) => {
                let msg = format!("unparseable schedule: {:?} : {e}", spec.schedule);
                s.event(EventType::Warning, "UnparseableSchedule", &msg).await;
            }
            (Some(zone), Ok(sched)) => {
                requeue = s.schedule(&sched, zone.as_ref(), Timestamp::now()).await?;
            }
        }
    }

    // History limits.
    let doomed = history::to_delete(&cj, &jobs);
    for job in doomed {
        s.delete_job(&job).await?;
    }

    if cj.status.as_ref() != Some(&s.status) && !(cj.status.is_none() && s.status == CronJobStatus::default()) {
        let mut next = s.cj.clone();
        next.status = Some(s.status.clone());
        let api: Api<CronJob> = Api::namespaced(c.ctx.client.clone(), &ns);
        api.replace_status(&cj.name_any(), &PostParams::default(), &next)
            .await
            .map_err(|source| Error::UpdateStatus { cronjob: cj.name_any(), source })?;
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}
