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

use std::sync::{Arc, Mutex};

use client_runtime::{Controller, Informers, Store};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::runtime::reflector;

use crate::Context;
use graph::{Index, Item};

/// At most this many objects are handled at once (upstream's `--concurrent-gc-syncs`; bounds the
/// API load of a mass deletion).
const WORKERS: u16 = 20;

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
    let changes = stores::subscribe(inf);
    let synced = inf.synced();
    let (store, writer) = reflector::store::<Item>();
    let graph = Arc::new(Graph { store: store.clone(), index: Mutex::new(Index::default()) });
    let (queue, requests) = futures::channel::mpsc::unbounded();
    let builder = builder::Builder { graph: graph.clone(), writer, queue };
    let gc = Arc::new(Gc { client: ctx.client.clone(), graph, owners: owners::Owners::new(ctx.client.clone()) });
    let work = Controller::for_store("garbagecollector", store).triggers(requests.boxed()).workers(WORKERS).run(
        inf,
        attempt::reconcile,
        gc,
    );
    async move {
        futures::join!(builder.run(changes, synced), work);
    }
    .boxed()
}
