//! The one controller loop: a work queue per controller fed by trigger streams, at most one
//! reconcile of an object at a time, bounded concurrency, the shared error policy
//! ([`crate::policy`]) and one span shape (`reconcile{controller, object.ref}`). Built on
//! kube-runtime's `applier` (its scheduler deduplicates queued keys and delays requeues).
//!
//! ```ignore
//! Controller::new("replicaset", inf)           // reconciles ReplicaSets as they change
//!     .watches(inf, |c: &Change<Pod>| owner_refs(c))  // and the owners of changed pods
//!     .workers(5)
//!     .run(inf, reconcile, state)
//! ```
//!
//! The loop waits until every informer registered when `run` is called has listed, so a
//! reconcile never acts on an empty cache. Each controller has its own queue: a flood of one
//! kind's changes never delays another controller.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::runtime::controller::{applier, Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;
use tracing::Instrument;

use crate::informers::{Change, Informers, Kind, Synced};
use crate::policy::{self, Backoff, Class};
use api::owner;

/// A controller under construction: the kind it reconciles, its cache and its triggers.
pub struct Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
{
    name: &'static str,
    store: Store<K>,
    triggers: Vec<BoxStream<'static, ObjectRef<K>>>,
    workers: u16,
    extra_sync: Option<Synced>,
}

impl<K: Kind> Controller<K> {
    /// A controller of kind `K` on the shared informer, triggered by every change of a `K`
    /// except its deletion (a deleted object has nothing left to reconcile; a controller that
    /// must clean up after one watches the deletions itself with [`Controller::watches`]).
    pub fn new(name: &'static str, inf: &mut Informers) -> Self {
        let store = inf.store::<K>();
        let own = inf
            .subscribe::<K>()
            .filter_map(|c| async move {
                match c {
                    Change::Applied { object, .. } => Some(ObjectRef::from_obj(object.as_ref())),
                    Change::Deleted(_) => None,
                }
            })
            .boxed();
        Controller { name, store, triggers: vec![own], workers: 1, extra_sync: None }
    }

    /// Also reconciles the owners (controller ownerReference of kind `K`) of changed `C`s, as
    /// upstream's `Owns` (deletions included).
    pub fn owns<C: Kind>(self, inf: &mut Informers) -> Self {
        self.watches(inf, |c: &Change<C>| {
            let obj = c.object();
            let ns = obj.meta().namespace.clone();
            owner::controller_of(obj.meta())
                .filter(|r| r.kind == K::kind(&()) && r.api_version == K::api_version(&()))
                .map(|r| {
                    let key = ObjectRef::new(&r.name);
                    match &ns {
                        Some(ns) => key.within(ns),
                        None => key,
                    }
                })
                .into_iter()
                .collect::<Vec<_>>()
        })
    }
}

impl<K> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
{
    /// A controller over a cache of its own (not an informer), triggered only by [`Controller::triggers`].
    pub fn for_store(name: &'static str, store: Store<K>) -> Self {
        Controller { name, store, triggers: Vec::new(), workers: 1, extra_sync: None }
    }

    /// Also reconciles the objects `mapper` names for each change of a `C`.
    pub fn watches<C: Kind, I>(mut self, inf: &mut Informers, mapper: impl Fn(&Change<C>) -> I + Send + 'static) -> Self
    where
        I: IntoIterator<Item = ObjectRef<K>>,
        I::IntoIter: Send + 'static,
    {
        let stream = inf.subscribe::<C>().flat_map(move |c| futures::stream::iter(mapper(&c))).boxed();
        self.triggers.push(stream);
        self
    }

    /// Also reconciles the objects a stream names.
    pub fn triggers(mut self, stream: BoxStream<'static, ObjectRef<K>>) -> Self {
        self.triggers.push(stream);
        self
    }

    /// Reconciles of different objects that may run at once (upstream's worker count).
    pub fn workers(mut self, n: u16) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Also waits for these informers before the first reconcile.
    pub fn after(mut self, synced: Synced) -> Self {
        self.extra_sync = Some(synced);
        self
    }

    /// The run loop: waits for the caches, then reconciles until the triggers end. A reconcile
    /// returns the next [`Action`] (e.g. a requeue at a deadline); an error goes through the
    /// shared error policy.
    pub fn run<Ctx, E, F>(
        self,
        inf: &Informers,
        reconcile: fn(Arc<K>, Arc<Ctx>) -> F,
        ctx: Arc<Ctx>,
    ) -> BoxFuture<'static, ()>
    where
        Ctx: Send + Sync + 'static,
        E: StdError + Send + 'static,
        F: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let synced = inf.synced();
        let Controller { name, store, triggers, workers, extra_sync } = self;
        let backoff = Arc::new(Backoff::default());
        let on_success = backoff.clone();
        let reconciler = move |obj: Arc<K>, ctx: Arc<Ctx>| {
            let key = ObjectRef::from_obj(obj.as_ref()).to_string();
            let span = tracing::info_span!("reconcile", controller = name, object.ref = %key);
            let backoff = on_success.clone();
            async move {
                let res = reconcile(obj, ctx).await;
                if res.is_ok() {
                    backoff.reset(&key);
                }
                res
            }
            .instrument(span)
            .boxed()
        };
        let error_policy = move |obj: Arc<K>, err: &E, _: Arc<Ctx>| {
            let key = ObjectRef::from_obj(obj.as_ref()).to_string();
            let class = policy::classify(err);
            let delay = policy::jittered(backoff.failed(&key, class));
            match class {
                Class::Conflict => {
                    tracing::debug!(controller = name, object.ref = %key, error = %err, ?delay, "conflict; retrying")
                }
                _ => tracing::warn!(
                    controller = name,
                    object.ref = %key,
                    error = %err,
                    retry_in = ?delay,
                    failures = backoff.failures(&key),
                    "reconcile failed"
                ),
            }
            Action::requeue(delay)
        };
        let queue = futures::stream::select_all(triggers).map(Ok::<_, Infallible>);
        async move {
            synced.wait().await;
            if let Some(extra) = extra_sync {
                extra.wait().await;
            }
            tracing::debug!(controller = name, "caches synced; reconciling");
            applier(reconciler, error_policy, ctx, store, queue, Config::default().concurrency(workers))
                .for_each(|res| async move {
                    if let Err(e) = res {
                        // A queued key whose object is gone, or a queue that ended: nothing to do.
                        tracing::trace!(controller = name, error = %e, "work item not reconciled");
                    }
                })
                .await;
        }
        .boxed()
    }
}
