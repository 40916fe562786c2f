//! The Endpoints controller ("endpoint"): for every Service with a selector, an Endpoints
//! object of the same name listing the selected pods — ready ones in `addresses`, the rest in
//! `notReadyAddresses` — with ports resolved from each pod's containers (upstream
//! pkg/controller/endpoint). Services without a selector keep whatever Endpoints users write;
//! the Endpoints of a deleted Service go too ([`orphans`]).
//!
//! Triggers: the Service, every pod its selector matches now or matched before
//! ([`crate::service_endpoints::services_of`]), pod deletions, and changes to the Endpoints themselves.

pub mod orphans;
pub mod subsets;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, PostParams};
use tracing::{debug, info};

use client_runtime::{Action, Change, Controller, Informers, ObjectRef, Store};

use crate::service_endpoints::{self as pods, trigger};
use crate::Context;

/// Upstream's `--concurrent-endpoint-syncs`.
const WORKERS: u16 = 5;

/// The label marking Endpoints this controller manages (upstream `LabelManagedBy`).
pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpoint-controller";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
/// How long to wait before retrying a failed write.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} endpoints {namespace}/{name}: {source}")]
    Write { action: &'static str, namespace: String, name: String, source: kube::Error },
}

struct State {
    ctx: Arc<Context>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    recorder: api::events::Recorder,
}

pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let services = inf.store::<Service>();
    let pods = inf.store::<Pod>();
    let endpoints = inf.store::<Endpoints>();
    let state = Arc::new(State { ctx: ctx.clone(), pods, endpoints, recorder: ctx.recorder(CONTROLLER_NAME) });
    let main = Controller::new("endpoint", inf)
        .watches(inf, move |c: &Change<Pod>| pods::services_of(&services, c))
        .watches(inf, |c: &Change<Endpoints>| service_of(c.object()))
        .workers(WORKERS)
        .run(inf, reconcile, state);
    let cleanup = orphans::controller(inf, ctx);
    futures::future::join(main, cleanup).map(|_| ()).boxed()
}

/// The Service an Endpoints object belongs to: the one of the same name.
fn service_of(ep: &Endpoints) -> Option<ObjectRef<Service>> {
    Some(ObjectRef::new(ep.metadata.name.as_deref()?).within(ep.metadata.namespace.as_deref()?))
}

async fn reconcile(svc: Arc<Service>, state: Arc<State>) -> Result<Action, Error> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    sync(&svc, &ns, &name, &state).await
}

async fn sync(svc: &Service, ns: &str, name: &str, state: &State) -> Result<Action, Error> {
    if !pods::managed(svc) {
        return Ok(Action::await_change());
    }
    let selected = pods::selected_pods(&state.pods, svc);
    let mut subsets = subsets::desired(svc, &selected);
    let over_capacity = subsets::truncate(&mut subsets);
    let labels = desired_labels(svc);
    let current = state.endpoints.get(&ObjectRef::new(name).within(ns));

    if let Some(cur) = &current {
        let annotations = cur.metadata.annotations.as_ref();
        let capacity_ok = annotations.is_some_and(|a| a.contains_key(OVER_CAPACITY_ANNOTATION)) == over_capacity;
        let same_subsets = cur.subsets.clone().unwrap_or_default() == subsets;
        if same_subsets && cur.metadata.labels.clone().unwrap_or_default() == labels && capacity_ok {
            debug!("endpoints unchanged");
            return Ok(Action::await_change());
        }
    }

    let mut ep = current.as_deref().cloned().unwrap_or_default();
    ep.metadata.name = Some(name.to_string());
    ep.metadata.namespace = Some(ns.to_string());
    let mut annotations = ep.metadata.annotations.take().unwrap_or_default();
    let previous = annotations.get(trigger::ANNOTATION).map(String::as_str);
    let at = trigger::last_change(svc, &selected, previous, jiff::Timestamp::now());
    annotations.insert(trigger::ANNOTATION.to_string(), at);
    if over_capacity {
        annotations.insert(OVER_CAPACITY_ANNOTATION.to_string(), "truncated".to_string());
    } else {
        annotations.remove(OVER_CAPACITY_ANNOTATION);
    }
    ep.metadata.annotations = Some(annotations);
    ep.metadata.labels = Some(labels);
    ep.subsets = (!subsets.is_empty()).then_some(subsets);

    let api: Api<Endpoints> = Api::namespaced(state.ctx.client.clone(), ns);
    let ready: usize = ep.subsets.iter().flatten().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).sum();
    let not_ready: usize =
        ep.subsets.iter().flatten().map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len)).sum();
    let (action, result) = if current.is_some() {
        ("update", api.replace(name, &PostParams::default(), &ep).await)
    } else {
        ("create", api.create(&PostParams::default(), &ep).await)
    };
    match result {
        Ok(_) => {
            info!(ready, not_ready, "{action}d endpoints");
            Ok(Action::await_change())
        }
        // The namespace is going away: creates keep failing, and the Service goes too.
        Err(kube::Error::Api(e)) if action == "create" && e.code == 403 && e.message.contains("terminat") => {
            debug!("namespace terminating; not creating endpoints");
            Ok(Action::await_change())
        }
        // The cache is behind our own last write: retry once it catches up, no event.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            debug!("endpoints changed meanwhile; retrying");
            Err(Error::Write { action, namespace: ns.to_string(), name: name.to_string(), source: kube::Error::Api(e) })
        }
        Err(source) => {
            let reason = if action == "create" { "FailedToCreateEndpoint" } else { "FailedToUpdateEndpoint" };
            let message = format!("Failed to {action} endpoint {ns}/{name}: {source}");
            state
                .recorder
                .record(&api::events::reference(svc), api::events::EventType::Warning, reason, &message)
                .await;
            Err(Error::Write { action, namespace: ns.to_string(), name: name.to_string(), source })
        }
    }
}

/// The Service's labels, plus the managed-by label, plus the headless marker when it has no
/// cluster IP.
fn desired_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(MANAGED_BY_LABEL.to_string(), CONTROLLER_NAME.to_string());
    if pods::is_service_ip_set(svc) {
        labels.remove(HEADLESS_LABEL);
    } else {
        labels.insert(HEADLESS_LABEL.to_string(), String::new());
    }
    labels
}
