//! One shared watch cache per process: a single watch per kind, feeding a read-only store that
//! every controller shares, and subscription streams that trigger controllers (kube-runtime's
//! shared reflectors). Controllers read the stores; they write through the API.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;

use futures::StreamExt;
use kube::runtime::reflector::{self, store::Writer, ReflectHandle, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// Events a subscriber may fall behind by before the shared watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;

type Starter = fn(&mut Informers, &Client, &CancellationToken);

struct Entry<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    store: Store<K>,
    writer: Option<Writer<K>>,
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

    fn entry<K>(&mut self) -> &mut Entry<K>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let id = TypeId::of::<K>();
        if !self.entries.contains_key(&id) {
            let (store, writer) = reflector::store_shared::<K>(SUBSCRIBER_BUFFER);
            self.entries.insert(id, Box::new(Entry { store, writer: Some(writer) }));
            self.starters.push(Self::start_kind::<K>);
        }
        match self.entries.get_mut(&id).and_then(|e| e.downcast_mut::<Entry<K>>()) {
            Some(e) => e,
            // The map is keyed by TypeId, so the downcast cannot fail.
            None => unreachable!("informer entry of the wrong type"),
        }
    }

    /// The shared read-only cache of kind `K` (all namespaces).
    pub fn store<K>(&mut self) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        self.entry::<K>().store.clone()
    }

    /// A stream of every object of kind `K` as it changes, for triggering a controller.
    pub fn subscribe<K>(&mut self) -> ReflectHandle<K>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        match self.entry::<K>().writer.as_ref().and_then(Writer::subscribe) {
            Some(h) => h,
            None => unreachable!("a shared store always accepts subscribers before start"),
        }
    }

    /// Starts one watch per registered kind. Each resumes from its last resourceVersion after a
    /// disconnect and re-lists on 410, with jittered backoff (kube-runtime's watcher).
    pub fn start(&mut self, client: &Client, stop: &CancellationToken) {
        for start in std::mem::take(&mut self.starters) {
            start(self, client, stop);
        }
    }

    fn start_kind<K>(&mut self, client: &Client, stop: &CancellationToken)
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let Some(writer) = self.entry::<K>().writer.take() else { return };
        let api: Api<K> = Api::all(client.clone());
        let stop = stop.clone();
        let name = std::any::type_name::<K>();
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .reflect_shared(writer)
                .for_each(|event| async move {
                    if let Err(e) = event {
                        tracing::warn!(kind = name, error = %e, "watch error; retrying");
                    }
                });
            tokio::select! {
                _ = stream => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}
