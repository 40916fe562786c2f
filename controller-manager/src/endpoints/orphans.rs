//! Endpoints whose Service is gone (upstream deletes them when it sees the Service deleted, and
//! sweeps leftovers at start). Keyed by the Endpoints object, triggered by Endpoints changes
//! (the initial list included) and by Service deletions. Only Endpoints carrying this
//! controller's managed-by label are deleted: users' Endpoints for selectorless Services, or
//! written before their Service, are left alone.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, DeleteParams, Preconditions};
use tracing::{debug, info};

use super::{CONTROLLER_NAME, MANAGED_BY_LABEL};
use client_runtime::{Action, Change, Controller, Informers, ObjectRef, Store};

use crate::Context;

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
    let _ = endpoints;
    // A deleted Service's Endpoints go with it.
    Controller::new("endpoint-orphans", inf)
        .watches(inf, |c: &Change<Service>| {
            let svc = c.object();
            Some(ObjectRef::<Endpoints>::new(svc.metadata.name.as_deref()?).within(svc.metadata.namespace.as_deref()?))
        })
        .run(inf, reconcile, state)
}

async fn reconcile(ep: Arc<Endpoints>, state: Arc<State>) -> Result<Action, Error> {
    let namespace = ep.metadata.namespace.clone().unwrap_or_default();
    let name = ep.metadata.name.clone().unwrap_or_default();
    let managed = ep.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL)).map(String::as_str);
    if managed != Some(CONTROLLER_NAME) || state.services.get(&ObjectRef::new(&name).within(&namespace)).is_some() {
        return Ok(Action::await_change());
    }
    {
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
}
