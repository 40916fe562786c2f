//! Keeps the graph in step with the shared caches (upstream `GraphBuilder`) and queues the
//! objects each change concerns: the object itself, its owners waiting for their dependents,
//! and — when it is being deleted with a cascading finalizer, or is gone — its dependents.
//!
//! Deletions arrive as such from the shared informers (with the object's last state).

use std::collections::HashSet;
use std::sync::Arc;

use client_runtime::{ObjectRef, Synced};
use futures::channel::mpsc::UnboundedSender;
use futures::stream::BoxStream;
use futures::StreamExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;

use super::graph::{Item, FOREGROUND, ORPHAN};
use super::stores::GraphChange;
use super::Graph;

pub struct Builder {
    pub graph: Arc<Graph>,
    pub writer: Writer<Item>,
    pub queue: UnboundedSender<ObjectRef<Item>>,
}

impl Builder {
    /// Runs until the change streams end. The graph is marked ready (and the work queue starts)
    /// once every informer has listed.
    pub async fn run(mut self, mut changes: BoxStream<'static, GraphChange>, synced: Synced) {
        let ready = synced.wait();
        tokio::pin!(ready);
        let mut primed = false;
        loop {
            tokio::select! {
                change = changes.next() => match change {
                    Some(GraphChange::Applied(item)) => self.apply(item),
                    Some(GraphChange::Deleted(item)) => {
                        // Only the object the graph holds (a recreated one has another uid).
                        if self.graph.store.get(&item.key()).is_some_and(|held| held.uid() == item.uid()) {
                            self.vanish(&item);
                        }
                    }
                    None => return,
                },
                _ = &mut ready, if !primed => {
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
