//! The ServiceAccount controller ("serviceaccount"): a `default` ServiceAccount in every active
//! namespace, recreated when deleted (upstream pkg/controller/serviceaccount). Keyed by
//! Namespace; triggered by namespaces and by deletions of `default` ServiceAccounts.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use tracing::{debug, info};

use client_runtime::{Action, Change, Controller, Informers, ObjectRef, Store};

use crate::Context;

/// The ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("create serviceaccount {namespace}/{DEFAULT}: {source}")]
    Create { namespace: String, source: kube::Error },
}

struct State {
    ctx: Arc<Context>,
    accounts: Store<ServiceAccount>,
}

pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let namespaces = inf.store::<Namespace>();
    let accounts = inf.store::<ServiceAccount>();
    let _ = namespaces;
    let state = Arc::new(State { ctx, accounts });
    Controller::new("serviceaccount", inf)
        .watches(inf, |c: &Change<ServiceAccount>| {
            // A `default` that was deleted is created again.
            let Change::Deleted(sa) = c else { return None };
            let (ns, name) = (sa.metadata.namespace.as_deref()?, sa.metadata.name.as_deref()?);
            (name == DEFAULT).then(|| ObjectRef::new(ns))
        })
        .run(inf, reconcile, state)
}

/// Whether the namespace takes new objects (not being deleted).
fn active(ns: &Namespace) -> bool {
    let phase = ns.status.as_ref().and_then(|s| s.phase.as_deref());
    ns.metadata.deletion_timestamp.is_none() && phase != Some("Terminating")
}

async fn reconcile(ns: Arc<Namespace>, state: Arc<State>) -> Result<Action, Error> {
    let namespace = ns.metadata.name.clone().unwrap_or_default();
    if !active(&ns) || state.accounts.get(&ObjectRef::new(DEFAULT).within(&namespace)).is_some() {
        return Ok(Action::await_change());
    }
    {
        let api: Api<ServiceAccount> = Api::namespaced(state.ctx.client.clone(), &namespace);
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some(DEFAULT.to_string());
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => info!("created default serviceaccount"),
            // Already there (the cache lags), or the namespace started terminating.
            Err(kube::Error::Api(e)) if e.code == 409 => debug!("default serviceaccount exists"),
            Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("terminat") => {
                debug!("namespace terminating")
            }
            Err(source) => return Err(Error::Create { namespace: namespace.clone(), source }),
        }
        Ok(Action::await_change())
    }
}
