//! The Namespace controller ("namespace"): empties a namespace being deleted and then removes
//! the `kubernetes` finalizer through `namespaces/NAME/finalize`, after which the API server
//! deletes the Namespace (upstream pkg/controller/namespace). Until the content is gone it
//! reports progress in the namespace's conditions and looks again, at growing intervals; the
//! deletion of a pod in the namespace also brings it back at once.

pub mod conditions;
pub mod content;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use tracing::{debug, info};

use client_runtime::{Action, Change, Controller, Informers, ObjectRef};

use crate::Context;

/// The finalizer this controller owns in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";
/// Upstream's `--concurrent-namespace-syncs`.
const WORKERS: u16 = 10;
const MIN_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} namespace {name}: {source}")]
    Api { action: &'static str, name: String, source: kube::Error },
}

pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let namespaces = inf.store::<Namespace>();
    let _ = namespaces;
    Controller::new("namespace", inf)
        .watches(inf, |c: &Change<Pod>| {
            // Only a pod that is gone can be the last thing a terminating namespace waits for.
            let Change::Deleted(pod) = c else { return None };
            Some(ObjectRef::<Namespace>::new(pod.metadata.namespace.as_deref()?))
        })
        .workers(WORKERS)
        .run(inf, reconcile, ctx)
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec.as_ref().and_then(|s| s.finalizers.as_ref()).is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// How long to wait before looking again at a namespace that still has content: a quarter of
/// the time it has been terminating, within [MIN_WAIT, MAX_WAIT].
pub fn wait_for(terminating_for: Duration) -> Duration {
    (terminating_for / 4).clamp(MIN_WAIT, MAX_WAIT)
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(deleted_at) = ns.metadata.deletion_timestamp.as_ref() else { return Ok(Action::await_change()) };
    if !has_finalizer(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.metadata.name.clone().unwrap_or_default();
    {
        let remaining = content::delete_all(&ctx.client, &name).await;
        let api: Api<Namespace> = Api::all(ctx.client.clone());
        let want = conditions::for_remaining(&remaining);
        let current = ns.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        if !conditions::same(&current, &want) {
            let patch = serde_json::json!({"status": {"conditions": want}});
            api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .map_err(|source| Error::Api { action: "update status of", name: name.clone(), source })?;
        }
        if !remaining.is_empty() {
            let elapsed = jiff::Timestamp::now().duration_since(deleted_at.0);
            let wait = wait_for(Duration::try_from(elapsed).unwrap_or_default());
            debug!(objects = ?remaining.objects, failures = ?remaining.failures, ?wait, "content remains");
            return Ok(Action::requeue(wait));
        }
        finalize(&api, &name).await
    }
}

/// Removes [`FINALIZER`] from `spec.finalizers` of the current namespace object.
async fn finalize(api: &Api<Namespace>, name: &str) -> Result<Action, Error> {
    let err = |action| move |source| Error::Api { action, name: name.to_string(), source };
    let mut ns = match api.get(name).await {
        Ok(ns) => ns,
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Action::await_change()),
        Err(e) => return Err(err("get")(e)),
    };
    if let Some(finalizers) = ns.spec.as_mut().and_then(|s| s.finalizers.as_mut()) {
        finalizers.retain(|f| f != FINALIZER);
    }
    match api.replace_subresource("finalize", name, &PostParams::default(), &ns).await {
        Ok(_) => info!("namespace emptied; finalized"),
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(err("finalize")(e)),
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert_eq!(wait_for(Duration::ZERO), MIN_WAIT);
        assert_eq!(wait_for(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(wait_for(Duration::from_secs(3600)), MAX_WAIT);
    }
}
