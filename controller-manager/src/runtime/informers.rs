//! One shared watch cache per process: a single watch per kind, feeding a read-only store that
//! every controller shares, and subscription streams that trigger controllers (kube-runtime's
//! shared reflectors). Controllers read the stores; they write through the API.
//!
//! kube-runtime's shared dispatcher passes on applied objects only, not deletions; a controller
//! must also wake when, say, one of its pods is deleted. So each kind also broadcasts its
//! deletions (after the store has dropped the object), and [`Informers::subscribe`] merges both.

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

/// Events a subscriber may fall behind by before the shared watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;
/// Deletions a subscriber may fall behind by before it misses some (it is then told to resync).
const DELETE_BUFFER: usize = 4096;

type Starter = fn(&mut Informers, &Client, &CancellationToken);

/// The bounds every watched kind satisfies.
pub trait Kind: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static {}
impl<K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static> Kind for K {}

struct Entry<K: Kind> {
    store: Store<K>,
    writer: Option<Writer<K>>,
    deletions: broadcast::Sender<Arc<K>>,
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
                let (store, writer) = reflector::store_shared::<K>(SUBSCRIBER_BUFFER);
                let (deletions, _) = broadcast::channel(DELETE_BUFFER);
                self.starters.push(Self::start_kind::<K>);
                v.insert(Box::new(Entry { store, writer: Some(writer), deletions }))
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
    /// triggering a controller. Only subscribe to streams you consume: an unread subscription
    /// holds back the shared watch.
    pub fn subscribe<K: Kind>(&mut self) -> BoxStream<'static, Arc<K>> {
        let entry = self.entry::<K>();
        let applied = match entry.writer.as_ref().and_then(Writer::subscribe) {
            Some(h) => h,
            None => unreachable!("a shared store accepts subscribers until it starts"),
        };
        let deleted = stream::unfold(entry.deletions.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(obj) => return Some((obj, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, kind = K::kind(&()).as_ref(), "subscriber missed deletions");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        stream::select(applied, deleted).boxed()
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
        let deletions = entry.deletions.clone();
        let api: Api<K> = Api::all(client.clone());
        let stop = stop.clone();
        let name = std::any::type_name::<K>();
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .reflect_shared(writer)
                .for_each(|event| {
                    match event {
                        // The store has dropped it by now: subscribers see the cache without it.
                        Ok(watcher::Event::Delete(obj)) => {
                            let _ = deletions.send(Arc::new(obj));
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
