//! One shared watch cache per process: a single watch per kind, feeding a read-only store that
//! every controller shares, and subscription streams that trigger controllers (kube-runtime's
//! shared reflectors). Controllers read the stores; they write through the API.
//!
//! Fan-out is our own: after the store has applied a watch event, the object (or, for a
//! deletion, its last state) is broadcast to every subscriber. kube-runtime's shared dispatcher
//! is not used because it drops deletions and can stall a subscriber whose object already left the
//! cache. A subscriber that falls behind the broadcast gets every cached object again (a resync):
//! controllers are level-triggered, so a repeated trigger is harmless and none is lost.
//!
//! When a kind's first list is complete (its store turns ready) every cached object is broadcast
//! once more: kube-runtime's `Store::wait_until_ready` wakes only the last of several waiters, so
//! a controller held until its store is ready would otherwise wait for its next change.

use std::any::{Any, TypeId};
use std::collections::hash_map::Entry as MapEntry;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use kube::runtime::reflector::{self, store::Writer, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Changes a subscriber may fall behind by before it is resynced from the store.
const CHANGE_BUFFER: usize = 8192;

type Starter = fn(&mut Informers, &Client, &CancellationToken);

/// The bounds every watched kind satisfies.
pub trait Kind: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static {}
impl<K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static> Kind for K {}

struct Entry<K: Kind> {
    store: Store<K>,
    writer: Option<Writer<K>>,
    changes: broadcast::Sender<Arc<K>>,
}

/// The registry of shared watches. Register every kind (via [`Informers::store`] or
/// [`Informers::subscribe`]) before [`Informers::start`].
pub struct Informers {
    entries: HashMap<TypeId, Box<dyn Any + Send>>,
    starters: Vec<Starter>,
}

impl Default for Informers {
    fn default() -> Self {
        Self::new()
    }
}

impl Informers {
    pub fn new() -> Self {
        Informers { entries: HashMap::new(), starters: Vec::new() }
    }

    fn entry<K: Kind>(&mut self) -> &mut Entry<K> {
        let entry = match self.entries.entry(TypeId::of::<K>()) {
            MapEntry::Occupied(e) => e.into_mut(),
            MapEntry::Vacant(v) => {
                let (store, writer) = reflector::store::<K>();
                let (changes, _) = broadcast::channel(CHANGE_BUFFER);
                self.starters.push(Self::start_kind::<K>);
                v.insert(Box::new(Entry { store, writer: Some(writer), changes }))
            }
        };
        match entry.downcast_mut::<Entry<K>>() {
            Some(e) => e,
            // The map is keyed by TypeId, so the downcast cannot fail.
            None => unreachable!("informer entry of the wrong type"),
        }
    }

    /// The shared read-only cache of kind `K` (all namespaces).
    pub fn store<K: Kind>(&mut self) -> Store<K> {
        self.entry::<K>().store.clone()
    }

    /// A stream of every object of kind `K` as it changes or is deleted (the last state), for
    /// triggering a controller.
    pub fn subscribe<K: Kind>(&mut self) -> BoxStream<'static, Arc<K>> {
        let entry = self.entry::<K>();
        let store = entry.store.clone();
        let rx = entry.changes.subscribe();
        stream::unfold((rx, Vec::<Arc<K>>::new()), move |(mut rx, mut resync)| {
            let store = store.clone();
            async move {
                loop {
                    if let Some(obj) = resync.pop() {
                        return Some((obj, (rx, resync)));
                    }
                    match rx.recv().await {
                        Ok(obj) => return Some((obj, (rx, resync))),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::debug!(
                                missed = n,
                                kind = K::kind(&()).as_ref(),
                                "subscriber fell behind; resyncing"
                            );
                            resync = store.state();
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed()
    }

    /// Starts one watch per registered kind. Each resumes from its last resourceVersion after a
    /// disconnect and re-lists on 410, with jittered backoff (kube-runtime's watcher).
    pub fn start(&mut self, client: &Client, stop: &CancellationToken) {
        for start in std::mem::take(&mut self.starters) {
            start(self, client, stop);
        }
    }

    fn start_kind<K: Kind>(&mut self, client: &Client, stop: &CancellationToken) {
        let entry = self.entry::<K>();
        let Some(writer) = entry.writer.take() else { return };
        let changes = entry.changes.clone();
        let store = entry.store.clone();
        let mut announced_ready = false;
        let api: Api<K> = Api::all(client.clone());
        let stop = stop.clone();
        let name = std::any::type_name::<K>();
        tokio::spawn(async move {
            let events = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
            let stream = reflector::reflector(writer, events).for_each(|event| {
                // The store has applied the event by now: subscribers read a cache that has it.
                match event {
                    Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) | watcher::Event::Delete(obj)) => {
                        // No subscribers is fine.
                        let _ = changes.send(Arc::new(obj));
                    }
                    Ok(watcher::Event::InitDone) if !announced_ready => {
                        announced_ready = true;
                        for obj in store.state() {
                            let _ = changes.send(obj);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(kind = name, error = %e, "watch error; retrying"),
                }
                async {}
            });
            tokio::select! {
                _ = stream => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}
