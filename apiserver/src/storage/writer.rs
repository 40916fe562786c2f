//! The single ordered commit path. One thread takes write requests off a queue in batches,
//! checks each precondition against the cache (and the earlier writes of its own batch),
//! assigns revisions, commits the batch to the backend in one durable transaction (group
//! commit: one fsync for the whole batch) and then applies it to the cache and broadcasts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::backend::{Backend, BackendWrite, StorageError};
use super::cache::{Event, EventType, Obj, Shared};

/// What must hold for a write to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// Create: the key must be free.
    MustNotExist,
    /// The key must exist (any revision).
    MustExist,
    /// Compare-and-swap: the key must exist at exactly this revision.
    Revision(u64),
}

#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Store this object; the writer sets `metadata.resourceVersion`.
    Put(Value),
    Delete,
}

#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub key: String,
    pub op: WriteOp,
    pub precondition: Precondition,
}

/// A committed write: its revision and the stored object (for a delete, the last state stamped
/// with the revision of the delete, as upstream's DELETED events carry).
#[derive(Debug, Clone)]
pub struct Committed {
    pub rev: u64,
    pub obj: Arc<Obj>,
    pub prev: Option<Arc<Obj>>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("object already exists")]
    AlreadyExists,
    #[error("object not found")]
    NotFound,
    #[error("object was modified")]
    Conflict,
    #[error("object to store is not a JSON object with metadata")]
    NotAnObject,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the store is shutting down")]
    Closed,
}

type Reply = oneshot::Sender<Result<Committed, WriteError>>;

const QUEUE: usize = 4096;
const MAX_BATCH: usize = 1024;

pub(super) fn spawn(
    shared: Arc<Shared>,
    backend: Box<dyn Backend>,
) -> Result<mpsc::Sender<(WriteRequest, Reply)>, StorageError> {
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(shared, backend, rx))
        .map_err(|e| StorageError::Backend(format!("start writer thread: {e}")))?;
    Ok(tx)
}

/// `metadata.labels` of an object, if any.
pub(super) fn labels_of(value: &Value) -> Option<Map<String, Value>> {
    value.pointer("/metadata/labels").and_then(Value::as_object).cloned()
}

fn stamp(mut value: Value, rev: u64) -> Result<Value, WriteError> {
    let meta = value
        .as_object_mut()
        .and_then(|o| o.get_mut("metadata"))
        .and_then(Value::as_object_mut)
        .ok_or(WriteError::NotAnObject)?;
    meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    Ok(value)
}

struct Pending {
    reply: Reply,
    committed: Committed,
    kind: EventType,
}

fn run(shared: Arc<Shared>, backend: Box<dyn Backend>, mut rx: mpsc::Receiver<(WriteRequest, Reply)>) {
    let mut batch: Vec<(WriteRequest, Reply)> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        commit_batch(&shared, backend.as_ref(), &mut batch);
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(shared: &Shared, backend: &dyn Backend, batch: &mut Vec<(WriteRequest, Reply)>) {
    let base = shared.state.read().unwrap_or_else(|p| p.into_inner()).revision;
    let mut next = base;
    // Keys written earlier in this batch: their state after those writes.
    let mut overlay: HashMap<String, Option<Arc<Obj>>> = HashMap::new();
    let mut writes: Vec<BackendWrite> = Vec::with_capacity(batch.len());
    let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());

    for (req, reply) in batch.drain(..) {
        let current = match overlay.get(&req.key) {
            Some(state) => state.clone(),
            None => shared.state.read().unwrap_or_else(|p| p.into_inner()).objects.get(&req.key).cloned(),
        };
        let ok = match (req.precondition, &current) {
            (Precondition::None, _) => Ok(()),
            (Precondition::MustNotExist, None) => Ok(()),
            (Precondition::MustNotExist, Some(_)) => Err(WriteError::AlreadyExists),
            (Precondition::MustExist, Some(_)) => Ok(()),
            (Precondition::MustExist | Precondition::Revision(_), None) => Err(WriteError::NotFound),
            (Precondition::Revision(r), Some(cur)) if cur.rev == r => Ok(()),
            (Precondition::Revision(_), Some(_)) => Err(WriteError::Conflict),
        };
        let result = ok.and_then(|()| prepare(&req, current.clone(), next + 1));
        match result {
            Ok((obj, write, kind)) => {
                next += 1;
                overlay.insert(req.key.clone(), if kind == EventType::Deleted { None } else { Some(obj.clone()) });
                writes.push(write);
                pending.push(Pending { reply, committed: Committed { rev: next, obj, prev: current }, kind });
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
    if pending.is_empty() {
        return;
    }
    if let Err(e) = backend.commit(next, &writes) {
        tracing::error!(error = %e, "store commit failed; batch rejected");
        for p in pending {
            let _ = p.reply.send(Err(WriteError::Storage(StorageError::Backend(e.to_string()))));
        }
        return;
    }
    let now = Instant::now();
    {
        let mut state = shared.state.write().unwrap_or_else(|p| p.into_inner());
        for p in &pending {
            let c = &p.committed;
            if p.kind == EventType::Deleted {
                state.objects.remove(&c.obj.key);
            } else {
                state.objects.insert(c.obj.key.clone(), c.obj.clone());
            }
            let event = Arc::new(Event { rev: c.rev, kind: p.kind, obj: c.obj.clone(), prev: c.prev.clone(), at: now });
            state.history.push_back(event.clone());
            // No receivers is fine: nobody is watching.
            let _ = shared.events.send(event);
        }
        state.revision = next;
        state.trim(&shared.opts, now);
        // Wakes readers waiting for this revision; no receivers is fine.
        shared.revision.send_replace(next);
    }
    for p in pending {
        let _ = p.reply.send(Ok(p.committed));
    }
}

/// Builds the stored object and backend write for one request at revision `rev`.
fn prepare(
    req: &WriteRequest,
    current: Option<Arc<Obj>>,
    rev: u64,
) -> Result<(Arc<Obj>, BackendWrite, EventType), WriteError> {
    match &req.op {
        WriteOp::Put(value) => {
            let value = stamp(value.clone(), rev)?;
            let json = Bytes::from(serde_json::to_vec(&value).map_err(|e| StorageError::Backend(e.to_string()))?);
            let obj = Arc::new(Obj::new(req.key.clone(), rev, json.clone(), labels_of(&value)));
            let kind = if current.is_some() { EventType::Modified } else { EventType::Added };
            Ok((obj, BackendWrite::Put { key: req.key.clone(), value: json }, kind))
        }
        WriteOp::Delete => {
            let cur = current.ok_or(WriteError::NotFound)?;
            let value = stamp(cur.value()?, rev)?;
            let json = Bytes::from(serde_json::to_vec(&value).map_err(|e| StorageError::Backend(e.to_string()))?);
            let obj = Arc::new(Obj::new(req.key.clone(), rev, json, cur.labels.clone()));
            Ok((obj, BackendWrite::Delete { key: req.key.clone() }, EventType::Deleted))
        }
    }
}
