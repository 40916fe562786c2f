//! Frees pods of Jobs that no longer exist from the tracking finalizer (upstream's orphan pod
//! cleanup): with the Job gone nothing will count them, and the finalizer would keep them (and
//! a background cascade) forever. The Job is confirmed gone with the API, not just the cache.

use std::sync::Arc;
use std::time::Duration;

use client_runtime::{Action, Controller, Informers, ObjectRef, Store};
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt};

use super::accounting::has_tracking_finalizer;
use super::tracking::remove_finalizer;
use super::Error;
use crate::Context;

struct OrphanCtx {
    ctx: Arc<Context>,
    jobs: Store<Job>,
}

/// Part of the `job` controller, started by [`super::controller`].
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let octx = Arc::new(OrphanCtx { ctx, jobs: inf.store::<Job>() });
    Controller::<Pod>::new("job-orphan-pods", inf).run(inf, reconcile, octx)
}

async fn reconcile(pod: Arc<Pod>, c: Arc<OrphanCtx>) -> Result<Action, Error> {
    if !has_tracking_finalizer(&pod) {
        return Ok(Action::await_change());
    }
    let Some(ns) = pod.namespace() else { return Ok(Action::await_change()) };
    let owner = pod.owner_references().iter().find(|r| r.controller == Some(true) && r.kind == "Job").cloned();
    let cached = owner
        .as_ref()
        .and_then(|o| c.jobs.get(&ObjectRef::new(&o.name).within(&ns)))
        .is_some_and(|j| j.uid().as_deref() == owner.as_ref().map(|o| o.uid.as_str()));
    if cached {
        return Ok(Action::await_change());
    }
    {
        if let Some(o) = &owner {
            let api: Api<Job> = Api::namespaced(c.ctx.client.clone(), &ns);
            match api.get_opt(&o.name).await {
                Ok(Some(j)) if j.uid().as_deref() == Some(o.uid.as_str()) => return Ok(Action::await_change()),
                Ok(_) => {}
                // Unsure: look again later rather than free a pod that may still be counted.
                Err(e) => {
                    tracing::debug!(error = %e, "could not confirm the job of a tracked pod");
                    return Ok(Action::requeue(Duration::from_secs(10)));
                }
            }
        }
        tracing::info!("removing the tracking finalizer from a pod without its job");
        let pods: Api<Pod> = Api::namespaced(c.ctx.client.clone(), &ns);
        remove_finalizer(&pods, &pod).await?;
        Ok(Action::await_change())
    }
}
