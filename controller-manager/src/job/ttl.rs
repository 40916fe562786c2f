//! The TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`), name
//! `ttl-after-finished`: deletes a finished Job `ttlSecondsAfterFinished` after its
//! Complete/Failed condition, with foreground propagation and a UID precondition as upstream,
//! after re-reading the Job from the API (the cached TTL may be stale).

use std::sync::Arc;
use std::time::Duration;

use client_runtime::{Action, Controller, Informers};
use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::{Api, ResourceExt};

use super::conditions::{COMPLETE, FAILED};
use crate::Context;

/// Upstream's `--concurrent-ttl-after-finished-syncs`.
const WORKERS: u16 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("deleting expired job {job}: {source}")]
    Delete { job: String, source: kube::Error },
}

/// The TTL-after-finished controller (`--controllers` name `ttl-after-finished`).
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Controller::new("ttl-after-finished", inf).workers(WORKERS).run(inf, reconcile, ctx)
}

/// When a finished Job with a TTL expires: its finish (the terminal condition's transition
/// time) plus the TTL. `None` when it needs no cleanup.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = job
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == COMPLETE || c.type_ == FAILED) && c.status == "True")?;
    let at = finished.last_transition_time.as_ref()?.0;
    at.checked_add(jiff::SignedDuration::from_secs(i64::from(ttl))).ok()
}

fn left(at: Timestamp) -> Duration {
    Duration::try_from(Timestamp::now().duration_until(at)).unwrap_or(Duration::ZERO)
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(at) = expires_at(&job) else { return Ok(Action::await_change()) };
    let wait = left(at);
    if !wait.is_zero() {
        return Ok(Action::requeue(wait));
    }
    let Some(ns) = job.namespace() else { return Ok(Action::await_change()) };
    let name = job.name_any();
    {
        let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
        let fresh = match api.get_opt(&name).await {
            Ok(Some(j)) => j,
            Ok(None) => return Ok(Action::await_change()),
            Err(source) => return Err(Error::Delete { job: name.clone(), source }),
        };
        match expires_at(&fresh).map(left) {
            None => return Ok(Action::await_change()),
            Some(w) if !w.is_zero() => return Ok(Action::requeue(w)),
            Some(_) => {}
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions { uid: fresh.uid(), resource_version: None }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => tracing::info!("deleted job whose TTL after finishing expired"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(source) => return Err(Error::Delete { job: name.clone(), source }),
        }
        Ok(Action::await_change())
    }
}
