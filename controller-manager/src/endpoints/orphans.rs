//! Endpoints whose Service is gone (upstream deletes them when it sees the Service deleted, and
//! sweeps leftovers at start). Keyed by the Endpoints object, triggered by Endpoints changes
//! (the initial list included) and by Service deletions. Only Endpoints carrying this
//! controller's managed-by label are deleted: users' Endpoints for selectorless Services, or
//! written before their Service, are left alone.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use tracing::{debug, info, info_span, Instrument};

use super::{CONTROLLER_NAME, MANAGED_BY_LABEL};
use crate::runtime::Informers;
use crate::Context;

const RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("delete endpoints {namespace}/{name}: {source}")]
    Delete { namespace: String, name: String, source: kube::Error },
}

struct State {
    ctx: Arc<Context>,
    services: Store<Service>,
}

pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let services = inf.store::<Service>();
    let endpoints = inf.store::<Endpoints>();
    let state = Arc::new(State { ctx, services });
    // The Service subscription carries deletions too (the Service's last state).
    let controller = Controller::for_shared_stream(inf.subscribe::<Endpoints>(), endpoints).watches_shared_stream(
        inf.subscribe::<Service>(),
        |svc: Arc<Service>| {
            Some(ObjectRef::<Endpoints>::new(svc.metadata.name.as_deref()?).within(svc.metadata.namespace.as_deref()?))
        },
    );
    async move {
        super::cache_sync::wait(&state.services).await;
        controller.run(reconcile, error_policy, state).for_each(|_| async {}).await;
    }
    .boxed()
}

fn error_policy(_ep: Arc<Endpoints>, err: &Error, _state: Arc<State>) -> Action {
    debug!(error = %err, "orphaned endpoints cleanup failed; retrying");
    Action::requeue(RETRY)
}

async fn reconcile(ep: Arc<Endpoints>, state: Arc<State>) -> Result<Action, Error> {
    let namespace = ep.metadata.namespace.clone().unwrap_or_default();
    let name = ep.metadata.name.clone().unwrap_or_default();
    let managed = ep.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL)).map(String::as_str);
    if managed != Some(CONTROLLER_NAME) || state.services.get(&ObjectRef::new(&name).within(&namespace)).is_some() {
        return Ok(Action::await_change());
    }
    let span = info_span!("reconcile", controller = CONTROLLER_NAME, object.ref = %format!("{namespace}/{name}"));
    async {
        let api: Api<Endpoints> = Api::namespaced(state.ctx.client.clone(), &namespace);
        // Only the object we judged orphaned: a Service and Endpoints recreated meanwhile stay.
        let dp = DeleteParams {
            preconditions: Some(Preconditions { uid: ep.metadata.uid.clone(), resource_version: None }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => info!("deleted endpoints of deleted service"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => debug!("endpoints already gone or replaced"),
            Err(source) => return Err(Error::Delete { namespace: namespace.clone(), name: name.clone(), source }),
        }
        Ok(Action::await_change())
    }
    .instrument(span)
    .await
}
