//! The in-memory watch cache: every current object, pre-serialized, plus a window of recent
//! events for watches that resume from a resourceVersion.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::backend::{Backend, StorageError};
use super::watch::{WatchError, Watcher};
use super::writer::{self, Committed, WriteError, WriteRequest};

/// One stored object as served: its key, the revision that last changed it and its JSON
/// (which already carries `metadata.resourceVersion`).
#[derive(Debug)]
pub struct Obj {
    pub key: String,
    pub rev: u64,
    pub json: Bytes,
    /// `metadata.labels`, extracted once for label selectors.
    pub labels: Option<Map<String, Value>>,
}

impl Obj {
    pub fn new(key: String, rev: u64, json: Bytes, labels: Option<Map<String, Value>>) -> Self {
        Obj { key, rev, json, labels }
    }

    /// Parses the stored JSON (it was written by us, so failure means corruption).
    pub fn value(&self) -> Result<Value, StorageError> {
        serde_json::from_slice(&self.json)
            .map_err(|e| StorageError::Corrupt { key: self.key.clone(), reason: e.to_string() })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change. `obj` is the new state (for a delete: the last state, stamped with the
/// revision of the delete); `prev` the state before, so a watcher can tell when an object
/// starts or stops matching its selector.
#[derive(Debug)]
pub struct Event {
    pub rev: u64,
    pub kind: EventType,
    pub obj: Arc<Obj>,
    pub prev: Option<Arc<Obj>>,
    pub at: Instant,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long events stay in the watch history.
    pub history_window: Duration,
    /// At most this many events are kept, whatever their age.
    pub history_max_events: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { history_window: Duration::from_secs(300), history_max_events: 50_000 }
    }
}

pub(super) struct State {
    pub(super) objects: BTreeMap<String, Arc<Obj>>,
    pub(super) revision: u64,
    pub(super) history: VecDeque<Arc<Event>>,
    /// Watches from a revision below this one have lost events: 410 Gone.
    pub(super) compacted: u64,
}

impl State {
    pub(super) fn trim(&mut self, opts: &StoreOptions, now: Instant) {
        while let Some(front) = self.history.front() {
            let too_old = now.saturating_duration_since(front.at) > opts.history_window;
            if too_old || self.history.len() > opts.history_max_events {
                self.compacted = front.rev;
                self.history.pop_front();
            } else {
                break;
            }
        }
    }
}

pub(super) struct Shared {
    pub(super) state: RwLock<State>,
    pub(super) events: broadcast::Sender<Arc<Event>>,
    /// The revision of the last applied batch, for readers waiting until the cache is at least
    /// as fresh as a requested resourceVersion (without holding a thread).
    pub(super) revision: watch::Sender<u64>,
    pub(super) opts: StoreOptions,
}

/// The current objects under `prefix` after `after`, at most `limit` kept ones, and how many
/// kept ones follow.
fn list_current(
    state: &State,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    keep: &dyn Fn(&Obj) -> bool,
) -> (Vec<Arc<Obj>>, Option<usize>) {
    let start = match after {
        Some(k) => Bound::Excluded(k.to_string()),
        None => Bound::Included(prefix.to_string()),
    };
    let mut out = Vec::new();
    let mut remaining: Option<usize> = None;
    for (k, obj) in state.objects.range((start, Bound::Unbounded)) {
        if !k.starts_with(prefix) {
            break;
        }
        if !keep(obj) {
            continue;
        }
        if out.len() < limit {
            out.push(obj.clone());
        } else {
            let n = remaining.get_or_insert(0);
            *n = n.saturating_add(1);
        }
    }
    (out, remaining)
}

/// The watch cache and the single commit path in front of a [`Backend`].
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    writes: mpsc::Sender<(WriteRequest, oneshot::Sender<Result<Committed, WriteError>>)>,
}

const BROADCAST_CAPACITY: usize = 1 << 16;

impl Store {
    /// Loads every object from `backend` into memory and starts the writer thread.
    pub fn open(backend: Box<dyn Backend>, opts: StoreOptions) -> Result<Store, StorageError> {
        let (revision, items) = backend.load()?;
        let mut objects = BTreeMap::new();
        for (key, json) in items {
            let value: Value = serde_json::from_slice(&json)
                .map_err(|e| StorageError::Corrupt { key: key.clone(), reason: e.to_string() })?;
            let rev = value
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .unwrap_or(revision);
            let labels = writer::labels_of(&value);
            objects.insert(key.clone(), Arc::new(Obj::new(key, rev, json, labels)));
        }
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (revision_tx, _) = watch::channel(revision);
        let shared = Arc::new(Shared {
            state: RwLock::new(State { objects, revision, history: VecDeque::new(), compacted: revision }),
            events,
            revision: revision_tx,
            opts,
        });
        let writes = writer::spawn(shared.clone(), backend)?;
        Ok(Store { shared, writes })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A poisoned lock means a writer panicked mid-apply; the state itself is still
        // consistent (apply does not panic between its steps), so keep serving.
        self.shared.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The revision of the last committed write.
    pub fn revision(&self) -> u64 {
        self.read().revision
    }

    /// Waits until the cache has applied revision `rev` (upstream's waitUntilFreshAndBlock, but
    /// asynchronous: no thread is held while waiting). Returns the current revision once it is
    /// at least `rev`, or, after `limit`, the revision the cache is still at.
    pub async fn wait_for_revision(&self, rev: u64, limit: Duration) -> Result<u64, u64> {
        let mut rx = self.shared.revision.subscribe();
        let current = *rx.borrow_and_update();
        if current >= rev {
            return Ok(current);
        }
        let reached = tokio::time::timeout(limit, rx.wait_for(|r| *r >= rev)).await.map(|r| r.map(|v| *v));
        match reached {
            Ok(Ok(r)) => Ok(r),
            // Timed out, or the writer is gone (the store is shutting down).
            _ => Err(self.revision()),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Obj>> {
        self.read().objects.get(key).cloned()
    }

    /// Objects whose key starts with `prefix`, in key order, beginning after `after` (exclusive)
    /// when given, at most `limit` of them for which `keep` holds. Returns the revision of the
    /// snapshot and whether more matching objects follow.
    pub fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&Obj) -> bool,
    ) -> (u64, Vec<Arc<Obj>>, Option<usize>) {
        let state = self.read();
        let (out, remaining) = list_current(&state, prefix, after, limit, keep);
        (state.revision, out, remaining)
    }

    /// Like [`Store::list`], but as the objects were at revision `at` (a continued LIST reads the
    /// snapshot its first page came from): later changes are undone from the event history.
    /// Fails when the history no longer reaches back to `at`.
    pub fn list_at(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&Obj) -> bool,
        at: u64,
    ) -> Result<(Vec<Arc<Obj>>, Option<usize>), WatchError> {
        let state = self.read();
        if at >= state.revision {
            // Under the same lock: a write landing in between must not leak into the snapshot.
            return Ok(list_current(&state, prefix, after, limit, keep));
        }
        if at < state.compacted {
            return Err(WatchError::Gone { requested: at, oldest: state.compacted.saturating_add(1) });
        }
        let in_range = |k: &str| k.starts_with(prefix) && after.map(|a| k > a).unwrap_or(true);
        // Undo, newest first, every change after `at` to a key in range.
        let mut overlay: BTreeMap<String, Option<Arc<Obj>>> = BTreeMap::new();
        for e in state.history.iter().rev().take_while(|e| e.rev > at) {
            if in_range(&e.obj.key) {
                overlay.insert(e.obj.key.clone(), e.prev.clone());
            }
        }
        let start = match after {
            Some(k) => Bound::Excluded(k.to_string()),
            None => Bound::Included(prefix.to_string()),
        };
        let mut merged: BTreeMap<&str, &Arc<Obj>> = state
            .objects
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| !overlay.contains_key(k.as_str()))
            .map(|(k, o)| (k.as_str(), o))
            .collect();
        for (k, v) in &overlay {
            if let Some(o) = v {
                merged.insert(k.as_str(), o);
            }
        }
        let mut out = Vec::new();
        let mut remaining: Option<usize> = None;
        for obj in merged.values() {
            if !keep(obj) {
                continue;
            }
            if out.len() < limit {
                out.push((*obj).clone());
            } else {
                let n = remaining.get_or_insert(0);
                *n = n.saturating_add(1);
            }
        }
        Ok((out, remaining))
    }

    /// A watcher of keys under `prefix` that sees every event after `from`.
    pub fn watch_from(&self, prefix: &str, from: u64) -> Result<Watcher, WatchError> {
        let mut state = self.shared.state.write().unwrap_or_else(|p| p.into_inner());
        state.trim(&self.shared.opts, Instant::now());
        if from < state.compacted {
            return Err(WatchError::Gone { requested: from, oldest: state.compacted.saturating_add(1) });
        }
        let backlog: VecDeque<Arc<Event>> =
            state.history.iter().filter(|e| e.rev > from && e.obj.key.starts_with(prefix)).cloned().collect();
        let rx = self.shared.events.subscribe();
        Ok(Watcher::new(prefix.to_string(), backlog, rx, from.max(state.revision)))
    }

    /// The current objects under `prefix` and a watcher of everything after them, atomically.
    pub fn list_and_watch(&self, prefix: &str) -> (u64, Vec<Arc<Obj>>, Watcher) {
        let state = self.read();
        let objs: Vec<Arc<Obj>> = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, o)| o.clone())
            .collect();
        let rx = self.shared.events.subscribe();
        let rev = state.revision;
        (rev, objs, Watcher::new(prefix.to_string(), VecDeque::new(), rx, rev))
    }

    /// Submits one write to the commit path and waits until it is durable.
    pub async fn write(&self, req: WriteRequest) -> Result<Committed, WriteError> {
        let (tx, rx) = oneshot::channel();
        self.writes.send((req, tx)).await.map_err(|_| WriteError::Closed)?;
        rx.await.map_err(|_| WriteError::Closed)?
    }

    /// Drops history older than the window even when no writes arrive.
    pub fn trim_history(&self) {
        let mut state = self.shared.state.write().unwrap_or_else(|p| p.into_inner());
        state.trim(&self.shared.opts, Instant::now());
    }

    /// The number of objects and of history events held in memory.
    pub fn sizes(&self) -> (usize, usize) {
        let s = self.read();
        (s.objects.len(), s.history.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Precondition, RedbBackend, WriteOp};

    fn put(name: &str) -> WriteRequest {
        WriteRequest {
            key: format!("/registry/configmaps/default/{name}"),
            op: WriteOp::Put(serde_json::json!({"metadata": {"name": name}})),
            precondition: Precondition::MustNotExist,
        }
    }

    #[tokio::test]
    async fn waiting_for_a_revision_wakes_on_the_write_or_times_out() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::Backend(e.to_string()))?;
        let backend = RedbBackend::open(&dir.path().join("store.redb"))?;
        let store = Store::open(Box::new(backend), StoreOptions::default())?;
        let now = store.revision();
        assert_eq!(store.wait_for_revision(now, Duration::ZERO).await, Ok(now));
        assert_eq!(store.wait_for_revision(u64::MAX, Duration::from_millis(50)).await, Err(now));

        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.wait_for_revision(now + 1, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let c = store.write(put("a")).await.map_err(|e| StorageError::Backend(e.to_string()))?;
        assert_eq!(c.rev, now + 1);
        let woke = waiter.await.map_err(|e| StorageError::Backend(e.to_string()))?;
        assert_eq!(woke, Ok(now + 1));
        Ok(())
    }

    #[tokio::test]
    async fn list_at_reads_exact_snapshots() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::Backend(e.to_string()))?;
        let backend = RedbBackend::open(&dir.path().join("store.redb"))?;
        let store = Store::open(Box::new(backend), StoreOptions::default())?;
        let err = |e: WriteError| StorageError::Backend(e.to_string());
        let a = store.write(put("a")).await.map_err(err)?;
        store.write(put("b")).await.map_err(err)?;
        let all = |_: &Obj| true;
        let (objs, more) = store
            .list_at("/registry/configmaps/", None, usize::MAX, &all, a.rev)
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        assert_eq!(objs.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["/registry/configmaps/default/a"]);
        assert_eq!(more, None);
        let (_, objs, more) = store.list("/registry/configmaps/", None, 1, &all);
        assert_eq!((objs.len(), more), (1, Some(1)));
        Ok(())
    }
}
