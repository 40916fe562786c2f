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
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use tracing::Instrument;

use crate::runtime::Informers;
use crate::Context;

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

impl Error {
    fn is_conflict(&self) -> bool {
        let (Error::Job { source, .. } | Error::Get { source, .. } | Error::UpdateStatus { source, .. }) = self;
        matches!(source, kube::Error::Api(s) if s.code == 409)
    }
}

pub struct CronCtx {
    ctx: Arc<Context>,
    jobs: Store<Job>,
    recorder: api::events::Recorder,
}

/// The CronJob controller (`--controllers` name `cronjob`).
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let cctx = Arc::new(CronCtx { recorder: ctx.recorder("cronjob-controller"), ctx, jobs: inf.store::<Job>() });
    Controller::for_shared_stream(inf.subscribe::<CronJob>(), inf.store::<CronJob>())
        .owns_shared_stream(inf.subscribe::<Job>())
        .run(reconcile, error_policy, cctx)
        .for_each(|_| async {})
        .boxed()
}

async fn reconcile(cj: Arc<CronJob>, c: Arc<CronCtx>) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", object.ref = %format!("cronjob/{}/{}", cj.namespace().unwrap_or_default(), cj.name_any()));
    sync::sync(cj, c).instrument(span).await
}

fn error_policy(cj: Arc<CronJob>, err: &Error, _c: Arc<CronCtx>) -> Action {
    tracing::warn!(cronjob = %cj.name_any(), error = %err, "cronjob sync failed");
    if err.is_conflict() {
        Action::requeue(Duration::from_millis(500))
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
