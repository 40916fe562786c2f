//! Garbage collector ("garbagecollector"; upstream `pkg/controller/garbagecollector`).
//!
//! A graph of owners and dependents (by `ownerReferences` uid) over the kinds of [`graph::Kind`],
//! built from the shared caches ([`builder`]), and one work queue of graph nodes (kube-runtime's
//! applier) whose reconcile ([`attempt`]) does:
//! - background: a dependent none of whose owners exists any more (confirmed by a live GET) is
//!   deleted;
//! - foreground: an owner being deleted with the `foregroundDeletion` finalizer has its
//!   dependents deleted (in the foreground themselves when they have dependents), and loses the
//!   finalizer once no dependent with `blockOwnerDeletion` is left;
//! - orphan: an owner being deleted with the `orphan` finalizer has the reference to it removed
//!   from every dependent, then loses the finalizer.

mod attempt;
mod builder;
mod decide;
mod graph;
mod owners;
mod stores;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::runtime::controller::{self, applier, Action};
use kube::runtime::reflector::{self, Store};

use crate::runtime::Informers;
use crate::Context;
use graph::{Index, Item};

/// At most this many objects are handled at once (bounds the API load of a mass deletion).
const CONCURRENCY: u16 = 32;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("resolve owner kind {kind}: {source}")]
    Resolve {
        kind: String,
        #[source]
        source: kube::Error,
    },
}

/// The graph: its nodes (the work queue's store) and the uid indexes.
pub struct Graph {
    store: Store<Item>,
    index: Mutex<Index>,
}

pub struct Gc {
    client: kube::Client,
    graph: Arc<Graph>,
    owners: owners::Owners,
}

impl Gc {
    /// The graph node with this uid.
    fn cached(&self, uid: &str) -> Option<Arc<Item>> {
        let key = self.graph.index.lock().unwrap_or_else(|p| p.into_inner()).by_uid(uid)?;
        self.graph.store.get(&key)
    }

    /// The graph nodes naming `uid` as an owner.
    fn dependents(&self, uid: &str) -> Vec<Item> {
        let keys = self.graph.index.lock().unwrap_or_else(|p| p.into_inner()).dependents(uid);
        keys.iter().filter_map(|k| self.graph.store.get(k)).map(|i| (*i).clone()).collect()
    }
}

/// The garbage collector: the graph builder and the work queue, as one future.
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let (stores, changes) = stores::Stores::register(inf);
    let (store, writer) = reflector::store::<Item>();
    let graph = Arc::new(Graph { store: store.clone(), index: Mutex::new(Index::default()) });
    let (queue, requests) = futures::channel::mpsc::unbounded();
    let builder = builder::Builder { graph: graph.clone(), writer, stores, queue };
    let gc = Arc::new(Gc { client: ctx.client.clone(), graph, owners: owners::Owners::new(ctx.client.clone()) });
    let work = applier(
        |item, gc| attempt::reconcile(item, gc).boxed(),
        error_policy,
        gc,
        store,
        requests.map(Ok::<_, Infallible>),
        controller::Config::default().concurrency(CONCURRENCY),
    )
    .for_each(|res| async move {
        if let Err(e) = res {
            tracing::debug!(error = %e, "garbage collector work item ended with an error");
        }
    });
    async move {
        futures::join!(builder.run(changes), work);
    }
    .boxed()
}

fn error_policy(item: Arc<Item>, err: &Error, _gc: Arc<Gc>) -> Action {
    tracing::warn!(object = %item.describe(), error = %err, "garbage collection failed; retrying");
    let conflict = matches!(err, Error::Api { source: kube::Error::Api(e), .. } if e.code == 409);
    Action::requeue(if conflict { Duration::from_millis(200) } else { Duration::from_secs(5) })
}
