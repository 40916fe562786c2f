//! The CronJob controller (upstream `pkg/controller/cronjob/cronjob_controllerv2.go`): creates a
//! Job named `<cronjob>-<scheduled minutes since the epoch>` at each start time of the schedule
//! (in `spec.timeZone`, else the controller's local zone), honouring `suspend`,
//! `startingDeadlineSeconds` and `concurrencyPolicy`, keeps `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`, trims finished Jobs to the history limits, and
//! requeues itself for the next start time (no polling).

mod history;
pub mod schedule;
mod sync;
mod template;
mod times;

use std::sync::Arc;

use client_runtime::{Controller, Informers, Store};
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;

use crate::Context;

/// Upstream's `--concurrent-cron-job-syncs`.
const WORKERS: u16 = 5;

/// The annotation a Job gets with its scheduled time (RFC 3339, in the CronJob's zone).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} job {job}: {source}")]
    Job { action: &'static str, job: String, source: kube::Error },
    #[error("reading cronjob {cronjob}: {source}")]
    Get { cronjob: String, source: kube::Error },
    #[error("updating the status of cronjob {cronjob}: {source}")]
    UpdateStatus { cronjob: String, source: kube::Error },
}

pub struct CronCtx {
    ctx: Arc<Context>,
    jobs: Store<Job>,
    recorder: api::events::Recorder,
}

/// The CronJob controller (`--controllers` name `cronjob`).
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let cctx = Arc::new(CronCtx { recorder: ctx.recorder("cronjob-controller"), ctx, jobs: inf.store::<Job>() });
    Controller::new("cronjob", inf).owns::<Job>(inf).workers(WORKERS).run(inf, sync::sync, cctx)
}
