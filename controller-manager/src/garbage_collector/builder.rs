//! Keeps the graph in step with the shared caches (upstream `GraphBuilder`) and queues the
//! objects each change concerns: the object itself, its owners waiting for their dependents,
//! and — when it is being deleted with a cascading finalizer, or is gone — its dependents.
//!
//! The shared subscriptions deliver changes but not deletions, so a sweep compares the graph
//! with the caches every [`SWEEP`] and treats objects missing from their cache as deleted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use futures::stream::BoxStream;
use futures::StreamExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

use super::graph::{Item, FOREGROUND, ORPHAN};
use super::stores::Stores;
use super::Graph;

/// How often the graph is compared with the caches to notice deleted objects.
pub const SWEEP: Duration = Duration::from_secs(1);

pub struct Builder {
    pub graph: Arc<Graph>,
    pub writer: Writer<Item>,
    pub stores: Stores,
    pub queue: UnboundedSender<ObjectRef<Item>>,
}

impl Builder {
    /// Runs until the change streams end.
    pub async fn run(mut self, mut changes: BoxStream<'static, Item>) {
        let mut tick = tokio::time::interval(SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stores = self.stores.clone();
        let ready = async move { stores.wait_until_ready().await };
        tokio::pin!(ready);
        let mut primed = false;
        loop {
            tokio::select! {
                change = changes.next() => match change {
                    Some(item) => self.apply(item),
                    None => return,
                },
                _ = tick.tick(), if primed => self.sweep(),
                _ = &mut ready, if !primed => {
                    self.sweep();
                    self.prime();
                    primed = true;
                }
            }
        }
    }

    fn send(&self, key: ObjectRef<Item>) {
        // The receiver only goes away when the collector stops.
        let _ = self.queue.unbounded_send(key);
    }

    fn apply(&mut self, item: Item) {
        let key = item.key();
        let old = self.graph.store.get(&key);
        if let Some(old) = &old {
            if **old == item {
                return;
            }
            if old.uid() != item.uid() {
                self.vanish(old);
            }
        }
        {
            let mut index = self.graph.index.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(old) = &old {
                index.remove(old);
            }
            index.insert(&item);
        }
        self.writer.apply_watcher_event(&Event::Apply(item.clone()));
        if !item.owners().is_empty() || item.deleting() {
            self.send(key);
        }
        let mut also = HashSet::new();
        {
            let index = self.graph.index.lock().unwrap_or_else(|p| p.into_inner());
            if item.deleting() && (item.has_finalizer(FOREGROUND) || item.has_finalizer(ORPHAN)) {
                also.extend(index.dependents(item.uid()));
            }
            for owner in item.owners() {
                if let Some(o) = index.by_uid(&owner.uid) {
                    if self.graph.store.get(&o).is_some_and(|o| o.deleting_dependents()) {
                        also.insert(o);
                    }
                }
            }
        }
        also.into_iter().for_each(|k| self.send(k));
    }

    /// `item` left the cluster: drop it and queue its owners and dependents.
    fn vanish(&mut self, item: &Item) {
        tracing::debug!(object = %item.describe(), "object deleted");
        let mut also = Vec::new();
        {
            let mut index = self.graph.index.lock().unwrap_or_else(|p| p.into_inner());
            index.remove(item);
            also.extend(item.owners().iter().filter_map(|o| index.by_uid(&o.uid)));
            also.extend(index.dependents(item.uid()));
        }
        self.writer.apply_watcher_event(&Event::Delete(item.clone()));
        also.into_iter().for_each(|k| self.send(k));
    }

    fn sweep(&mut self) {
        let gone: Vec<_> = self.graph.store.state().into_iter().filter(|i| !self.stores.contains(i)).collect();
        for item in gone {
            self.vanish(&item);
        }
    }

    /// Marks the graph ready once every cache has listed (the work queue waits for this).
    fn prime(&mut self) {
        let items = self.graph.store.state();
        self.writer.apply_watcher_event(&Event::Init);
        for item in items {
            self.writer.apply_watcher_event(&Event::InitApply((*item).clone()));
        }
        self.writer.apply_watcher_event(&Event::InitDone);
        tracing::info!(objects = self.graph.store.len(), "garbage collector graph primed");
    }
}
