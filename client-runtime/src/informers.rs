//! Shared informers: one watch per (kind, selection) per process, feeding a read-only cache that
//! every consumer shares, and a typed change stream per subscriber.
//!
//! The reflector loop is our own (over kube-runtime's `watcher` and the `Store` writer), so that
//! each change is delivered with what the cache held before it: a subscriber sees
//! [`Change::Applied`] with `previous` (`None`: the object is new to the cache — upstream's
//! `AddFunc`) and [`Change::Deleted`] with the object's last state (upstream's `DeleteFunc`).
//! Nothing is inferred from cache absence.
//!
//! Delivery rules, which every consumer may rely on:
//! - A change is applied to the cache before it is delivered, and changes are delivered to a
//!   subscriber in the order the cache applied them, each once. Every subscriber has its own
//!   unbounded queue: a slow consumer never makes another wait, and none is resynced.
//! - Nothing is delivered before the kind's first list is complete; then every cached object is
//!   delivered once as `Applied` with no `previous`. This is the one cache-sync mechanism:
//!   [`Informers::synced`] resolves when every informer registered so far has listed.
//! - After a re-list (a watch that could not resume, e.g. 410 Gone), objects that vanished during
//!   the gap are delivered as `Deleted`, and every listed object as `Applied` (with `previous`
//!   when it was cached before).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::stream::BoxStream;
use futures::StreamExt;
use kube::runtime::reflector::{self, store::Writer, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The bounds every watched kind satisfies.
pub trait Kind: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static {}
impl<K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static> Kind for K {}

/// One change of a watched object, as a subscriber receives it.
#[derive(Debug)]
pub enum Change<K> {
    /// Created or updated. `previous` is what the cache held before (`None`: new to the cache).
    Applied { object: Arc<K>, previous: Option<Arc<K>> },
    /// Deleted; the object's last state.
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied { object, previous } => {
                Change::Applied { object: object.clone(), previous: previous.clone() }
            }
            Change::Deleted(object) => Change::Deleted(object.clone()),
        }
    }
}

impl<K> Change<K> {
    /// The object as it is now (for a deletion: its last state).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied { object, .. } | Change::Deleted(object) => object,
        }
    }

    /// Whether the object is new to the cache (upstream's add event).
    pub fn is_added(&self) -> bool {
        matches!(self, Change::Applied { previous: None, .. })
    }

    pub fn is_deleted(&self) -> bool {
        matches!(self, Change::Deleted(_))
    }
}

/// What a subscriber of [`Informers::subscribe_events`] receives: the changes, and once, right
/// after the changes of the first list, `Synced` (for a consumer that must know when it has seen
/// everything that existed, e.g. a scheduler that may not place pods before it knows the nodes).
#[derive(Debug)]
pub enum Event<K> {
    Change(Change<K>),
    Synced,
}

impl<K> Clone for Event<K> {
    fn clone(&self) -> Self {
        match self {
            Event::Change(c) => Event::Change(c.clone()),
            Event::Synced => Event::Synced,
        }
    }
}

/// Which objects of a kind an informer watches: field and label selectors in the API's syntax
/// (e.g. `spec.nodeName=node-1`). The default is every object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selection {
    pub fields: Option<String>,
    pub labels: Option<String>,
}

impl Selection {
    pub fn fields(selector: impl Into<String>) -> Self {
        Selection { fields: Some(selector.into()), labels: None }
    }

    pub fn labels(selector: impl Into<String>) -> Self {
        Selection { fields: None, labels: Some(selector.into()) }
    }
}

type Subscribers<K> = Arc<Mutex<Vec<mpsc::UnboundedSender<Event<K>>>>>;
type Starter = Box<dyn FnOnce(&Client, &CancellationToken) + Send>;

struct Entry<K: Kind> {
    store: Store<K>,
    subscribers: Subscribers<K>,
    synced: watch::Receiver<bool>,
}

/// Resolves when every informer it was taken from has completed its first list.
#[derive(Clone)]
pub struct Synced(Vec<watch::Receiver<bool>>);

impl Synced {
    pub async fn wait(mut self) {
        for rx in &mut self.0 {
            // An error means the informer stopped (shutdown): nothing to wait for.
            let _ = rx.wait_for(|synced| *synced).await;
        }
    }

    /// Whether every informer has listed, without waiting.
    pub fn is_synced(&self) -> bool {
        self.0.iter().all(|rx| *rx.borrow())
    }
}

/// The registry of shared informers of one process. Register what a component needs (through
/// [`Informers::store`] and [`Informers::subscribe`] and their `_selected` forms), then
/// [`Informers::start`] once.
pub struct Informers {
    entries: HashMap<(TypeId, Selection), Box<dyn Any + Send>>,
    starters: Vec<Starter>,
    synced: Vec<watch::Receiver<bool>>,
}

impl Default for Informers {
    fn default() -> Self {
        Self::new()
    }
}

fn unlock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Informers {
    pub fn new() -> Self {
        Informers { entries: HashMap::new(), starters: Vec::new(), synced: Vec::new() }
    }

    fn entry<K: Kind>(&mut self, selection: &Selection) -> &mut Entry<K> {
        let key = (TypeId::of::<K>(), selection.clone());
        if !self.entries.contains_key(&key) {
            let (store, writer) = reflector::store::<K>();
            let (synced_tx, synced) = watch::channel(false);
            self.synced.push(synced.clone());
            let subscribers: Subscribers<K> = Arc::default();
            let reflector = Reflector {
                writer,
                store: store.clone(),
                subscribers: subscribers.clone(),
                synced_tx,
                relisting: None,
            };
            self.starters.push(Self::starter(reflector, selection.clone()));
            self.entries.insert(key.clone(), Box::new(Entry { store, subscribers, synced }));
        }
        match self.entries.get_mut(&key).and_then(|e| e.downcast_mut::<Entry<K>>()) {
            Some(e) => e,
            // Inserted above, and the map is keyed by TypeId: the lookup and downcast cannot fail.
            None => unreachable!("informer entry missing or of the wrong type"),
        }
    }

    /// The shared read-only cache of every object of kind `K`.
    pub fn store<K: Kind>(&mut self) -> Store<K> {
        self.store_selected::<K>(&Selection::default())
    }

    /// The shared read-only cache of the objects of kind `K` that `selection` selects.
    pub fn store_selected<K: Kind>(&mut self, selection: &Selection) -> Store<K> {
        self.entry::<K>(selection).store.clone()
    }

    /// Every change of every object of kind `K` (see the module docs for the delivery rules).
    pub fn subscribe<K: Kind>(&mut self) -> BoxStream<'static, Change<K>> {
        self.subscribe_selected::<K>(&Selection::default())
    }

    /// Every change of the objects of kind `K` that `selection` selects. An object that stops
    /// matching is delivered as `Deleted`, one that starts matching as new (the API server's
    /// selector transitions).
    pub fn subscribe_selected<K: Kind>(&mut self, selection: &Selection) -> BoxStream<'static, Change<K>> {
        self.subscribe_events_selected::<K>(selection)
            .filter_map(|e| async move {
                match e {
                    Event::Change(c) => Some(c),
                    Event::Synced => None,
                }
            })
            .boxed()
    }

    /// Every change of every object of kind `K`, and [`Event::Synced`] after the first list.
    pub fn subscribe_events<K: Kind>(&mut self) -> BoxStream<'static, Event<K>> {
        self.subscribe_events_selected::<K>(&Selection::default())
    }

    /// [`Informers::subscribe_events`] for the objects `selection` selects.
    pub fn subscribe_events_selected<K: Kind>(&mut self, selection: &Selection) -> BoxStream<'static, Event<K>> {
        let entry = self.entry::<K>(selection);
        let (tx, rx) = mpsc::unbounded();
        let mut subs = unlock(&entry.subscribers);
        // A late subscriber (after the first list) starts from the cache; the lock keeps this
        // snapshot and the next delivered change in order.
        if *entry.synced.borrow() {
            for object in entry.store.state() {
                let _ = tx.unbounded_send(Event::Change(Change::Applied { object, previous: None }));
            }
            let _ = tx.unbounded_send(Event::Synced);
        }
        subs.push(tx);
        rx.boxed()
    }

    /// Resolves when every informer registered so far has completed its first list.
    pub fn synced(&self) -> Synced {
        Synced(self.synced.clone())
    }

    /// Starts one watch per registered informer. Each resumes from its last resourceVersion
    /// after a disconnect and re-lists when it cannot, with jittered backoff (kube-runtime's
    /// watcher). Informers registered later are started by a later call.
    pub fn start(&mut self, client: &Client, stop: &CancellationToken) {
        for start in std::mem::take(&mut self.starters) {
            start(client, stop);
        }
    }

    fn starter<K: Kind>(reflector: Reflector<K>, selection: Selection) -> Starter {
        Box::new(move |client: &Client, stop: &CancellationToken| {
            let api: Api<K> = Api::all(client.clone());
            let mut config = watcher::Config::default().any_semantic();
            if let Some(f) = &selection.fields {
                config = config.fields(f);
            }
            if let Some(l) = &selection.labels {
                config = config.labels(l);
            }
            let stop = stop.clone();
            tokio::spawn(async move {
                let events = watcher(api, config).default_backoff().boxed();
                tokio::select! {
                    _ = reflector.run(events) => {}
                    _ = stop.cancelled() => {}
                }
            });
        })
    }
}

/// Applies watch events to the cache and delivers them to the subscribers.
struct Reflector<K: Kind> {
    writer: Writer<K>,
    store: Store<K>,
    subscribers: Subscribers<K>,
    synced_tx: watch::Sender<bool>,
    /// During a re-list after the first one: what the cache held when it began.
    relisting: Option<HashMap<ObjectRef<K>, Arc<K>>>,
}

impl<K: Kind> Reflector<K> {
    async fn run(mut self, mut events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin) {
        let kind = K::kind(&());
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.apply(event),
                Err(e) => tracing::warn!(kind = kind.as_ref(), error = %e, "watch error; retrying"),
            }
        }
    }

    fn deliver(subs: &mut Vec<mpsc::UnboundedSender<Event<K>>>, change: Change<K>) {
        Self::send(subs, Event::Change(change));
    }

    fn send(subs: &mut Vec<mpsc::UnboundedSender<Event<K>>>, event: Event<K>) {
        // A subscriber whose stream was dropped is forgotten.
        subs.retain(|tx| tx.unbounded_send(event.clone()).is_ok());
    }

    fn apply(&mut self, event: watcher::Event<K>) {
        let mut subs = unlock(&self.subscribers);
        let synced = *self.synced_tx.borrow();
        match event {
            watcher::Event::Apply(obj) => {
                let key = ObjectRef::from_obj(&obj);
                let previous = self.store.get(&key);
                self.writer.apply_watcher_event(&watcher::Event::Apply(obj));
                if let Some(object) = self.store.get(&key) {
                    Self::deliver(&mut subs, Change::Applied { object, previous });
                }
            }
            watcher::Event::Delete(obj) => {
                let event = watcher::Event::Delete(obj);
                self.writer.apply_watcher_event(&event);
                if let watcher::Event::Delete(obj) = event {
                    Self::deliver(&mut subs, Change::Deleted(Arc::new(obj)));
                }
            }
            watcher::Event::Init => {
                if synced {
                    let before = self.store.state().into_iter().map(|o| (ObjectRef::from_obj(o.as_ref()), o)).collect();
                    self.relisting = Some(before);
                }
                self.writer.apply_watcher_event(&watcher::Event::Init);
            }
            event @ watcher::Event::InitApply(_) => self.writer.apply_watcher_event(&event),
            watcher::Event::InitDone => {
                self.writer.apply_watcher_event(&watcher::Event::InitDone);
                let mut before = self.relisting.take().unwrap_or_default();
                for object in self.store.state() {
                    let previous = before.remove(&ObjectRef::from_obj(object.as_ref()));
                    Self::deliver(&mut subs, Change::Applied { object, previous });
                }
                for (_, gone) in before {
                    Self::deliver(&mut subs, Change::Deleted(gone));
                }
                if !synced {
                    tracing::debug!(kind = K::kind(&()).as_ref(), objects = self.store.len(), "informer synced");
                    Self::send(&mut subs, Event::Synced);
                    let _ = self.synced_tx.send(true);
                }
            }
        }
    }
}
